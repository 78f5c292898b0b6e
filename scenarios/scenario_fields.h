// The scenario's scalar fields, declared once (private to scenarios/: scenario.cc includes it).
#pragma once
#include "scenarios/scenario.h"
#include "scenarios/toml_fields.h"

namespace edgebed::scenario_detail {

// Every scalar field of a scenario, declared once: its path, its member, its range or its allowed
// values. The Reader reads and checks them from a file; the Writer writes them back
// (Scenario::ToToml); the test suite checks that scenarios/default.toml documents each of them with
// the struct's default. Channel ranges are ChannelConfig::Validate's alone.
template <typename V>
Status Fields(V& r, Scenario* s) {
  TransferConfig& tr = s->transfer;
  TorchScriptConfig& ts = s->torchscript;
  DataSpec& d = s->data;
  ChannelConfig& c = s->channel;
  OtaConfig& o = s->ota;
  GnnConfig& gn = s->gnn;
  GraphConfig& gg = gn.graph;
  SplitConfig& sp = s->split;
  SplitInferenceConfig& inf = sp.inference;
  std::vector<std::string> models = Learner::Models();
  models.push_back("slimsplit");
  models.push_back("gnn");
  EDGEBED_RETURN_IF_ERROR(r.Str("name", &s->name));
  EDGEBED_RETURN_IF_ERROR(r.Int("seed", &s->seed, 0, INT64_MAX));
  EDGEBED_RETURN_IF_ERROR(r.Str("output_dir", &s->output_dir));
  EDGEBED_RETURN_IF_ERROR(r.Str("model.name", &s->model, models));
  EDGEBED_RETURN_IF_ERROR(r.Str("model.path", &ts.path));
  EDGEBED_RETURN_IF_ERROR(r.Str("model.loss", &ts.loss, {"auto", "cross_entropy", "mse", "module"}));
  EDGEBED_RETURN_IF_ERROR(r.Real("model.train_flops", &ts.train_flops, 0.0, 1e15));
  EDGEBED_RETURN_IF_ERROR(r.Str("data.format", &d.format, {"fashion-mnist", "idx", "cifar10", "npz"}));
  EDGEBED_RETURN_IF_ERROR(r.Str("data.dir", &d.dir));
  EDGEBED_RETURN_IF_ERROR(r.Str("data.train", &d.train));
  EDGEBED_RETURN_IF_ERROR(r.Str("data.train_labels", &d.train_labels));
  EDGEBED_RETURN_IF_ERROR(r.Str("data.test", &d.test));
  EDGEBED_RETURN_IF_ERROR(r.Str("data.test_labels", &d.test_labels));
  EDGEBED_RETURN_IF_ERROR(r.Real("data.held_out", &d.held_out, 0.0, 0.9));
  EDGEBED_RETURN_IF_ERROR(r.RealArray("data.mean", &d.mean, -1e9, 1e9));
  EDGEBED_RETURN_IF_ERROR(r.RealArray("data.std", &d.std, 1e-12, 1e9));
  EDGEBED_RETURN_IF_ERROR(r.Str("data.partition", &s->partition, {"iid", "dirichlet", "shards", "natural", "sample"}));
  EDGEBED_RETURN_IF_ERROR(r.Real("data.alpha", &s->dirichlet_alpha, 0.0, 1e6, true));
  EDGEBED_RETURN_IF_ERROR(r.Int("data.shards_per_node", &s->shards_per_node, 1, 1000));
  EDGEBED_RETURN_IF_ERROR(r.Int("data.min_samples", &s->min_samples, 1, 1000000));
  EDGEBED_RETURN_IF_ERROR(r.Int("data.samples_per_node", &s->samples_per_node, 0, 1000000));
  EDGEBED_RETURN_IF_ERROR(r.Int("data.train_limit", &d.train_limit, 0, UINT32_MAX));
  EDGEBED_RETURN_IF_ERROR(r.Int("data.test_limit", &d.test_limit, 0, UINT32_MAX));
  EDGEBED_RETURN_IF_ERROR(r.Classes("data.classes", &d.classes, d.format == "fashion-mnist" || d.format == "cifar10" ? 9 : 65535));
  EDGEBED_RETURN_IF_ERROR(r.Str("transfer.backbone", &tr.backbone));
  EDGEBED_RETURN_IF_ERROR(r.Str("transfer.mode", &tr.mode, {"mobiletl", "full", "linear"}));
  EDGEBED_RETURN_IF_ERROR(r.Int("transfer.blocks", &tr.blocks, 1, static_cast<int64_t>(IrbNetBlocks().size())));
  EDGEBED_RETURN_IF_ERROR(r.Real("transfer.memory_budget_kb", &tr.memory_budget_kb, 0.0, 1e9));
  EDGEBED_RETURN_IF_ERROR(r.Int("federation.nodes", &s->nodes, 1, 100000));
  EDGEBED_RETURN_IF_ERROR(r.Int("federation.rounds", &s->rounds, 1, 1000000));
  EDGEBED_RETURN_IF_ERROR(r.Real("federation.fraction", &s->fraction, 0.0, 1.0, true));
  EDGEBED_RETURN_IF_ERROR(r.Real("federation.min_quorum", &s->min_quorum, 0.0, 1.0, true));
  EDGEBED_RETURN_IF_ERROR(r.Str("federation.strategy", &s->strategy, {"fedavg", "fedprox", "fedavgm", "fedadagrad", "fedadam", "fedyogi", "scaffold", "fedbuff"}));
  EDGEBED_RETURN_IF_ERROR(r.Real("federation.proximal_mu", &s->proximal_mu, 0.0, 1e6));
  EDGEBED_RETURN_IF_ERROR(r.Real("federation.server_lr", &s->server_lr, 0.0, 10.0, true));
  EDGEBED_RETURN_IF_ERROR(r.Int("federation.buffer_size", &s->buffer_size, 1, 100000));
  EDGEBED_RETURN_IF_ERROR(r.Str("federation.staleness", &s->staleness, {"sqrt", "constant"}));
  EDGEBED_RETURN_IF_ERROR(r.Real("federation.server_momentum", &s->server_momentum, 0.0, 0.999));
  EDGEBED_RETURN_IF_ERROR(r.Real("federation.beta1", &s->beta1, 0.0, 0.999));
  EDGEBED_RETURN_IF_ERROR(r.Real("federation.beta2", &s->beta2, 0.0, 0.999));
  EDGEBED_RETURN_IF_ERROR(r.Real("federation.tau", &s->tau, 0.0, 1.0, true));
  EDGEBED_RETURN_IF_ERROR(r.Str("federation.aggregation", &s->aggregation,
                                {"mean", "median", "trimmed_mean", "krum", "multi_krum", "bulyan", "norm_bound"}));
  EDGEBED_RETURN_IF_ERROR(r.Int("federation.byzantine", &s->byzantine, 0, 100000));
  EDGEBED_RETURN_IF_ERROR(r.Real("federation.trim_fraction", &s->trim_fraction, 0.0, 0.49));
  EDGEBED_RETURN_IF_ERROR(r.Int("federation.multi_krum_keep", &s->multi_krum_keep, 0, 100000));
  EDGEBED_RETURN_IF_ERROR(r.Real("federation.clip_norm", &s->clip_norm, 0.0, 1e9));
  EDGEBED_RETURN_IF_ERROR(r.Real("federation.dp_clip_norm", &s->dp_clip_norm, 0.0, 1e9));
  EDGEBED_RETURN_IF_ERROR(r.Real("federation.dp_noise_multiplier", &s->dp_noise_multiplier, 0.0, 1e4));
  EDGEBED_RETURN_IF_ERROR(r.Real("federation.dp_target_epsilon", &s->dp_target_epsilon, 0.0, 1e6));
  EDGEBED_RETURN_IF_ERROR(r.Real("federation.dp_delta", &s->dp_delta, 1e-12, 0.1));
  EDGEBED_RETURN_IF_ERROR(r.Bool("federation.dp_adaptive", &s->dp_adaptive));
  EDGEBED_RETURN_IF_ERROR(r.Real("federation.dp_target_quantile", &s->dp_target_quantile, 0.0, 1.0, true));
  EDGEBED_RETURN_IF_ERROR(r.Real("federation.dp_clip_lr", &s->dp_clip_lr, 0.0, 10.0, true));
  EDGEBED_RETURN_IF_ERROR(r.Real("federation.dp_count_noise_std", &s->dp_count_noise_std, 0.0, 1e9));
  EDGEBED_RETURN_IF_ERROR(r.Str("federation.selection", &s->selection, {"random", "deadline", "channel"}));
  EDGEBED_RETURN_IF_ERROR(r.Real("federation.over_commit", &s->over_commit, 0.0, 10.0));
  EDGEBED_RETURN_IF_ERROR(r.Int("federation.evaluate_every", &s->evaluate_every, 0, 1000000));
  EDGEBED_RETURN_IF_ERROR(r.Int("training.local_epochs", &s->local_epochs, 1, 1000));
  EDGEBED_RETURN_IF_ERROR(r.Int("training.batch_size", &s->batch_size, 1, 65536));
  EDGEBED_RETURN_IF_ERROR(r.Real("training.learning_rate", &s->learning_rate, 0.0, 10.0, true));
  EDGEBED_RETURN_IF_ERROR(r.Real("training.momentum", &s->momentum, 0.0, 0.999));
  EDGEBED_RETURN_IF_ERROR(r.Str("training.optimizer", &s->optimizer, {"sgd", "adam"}));
  EDGEBED_RETURN_IF_ERROR(r.Real("training.weight_decay", &s->weight_decay, 0.0, 1.0));
  EDGEBED_RETURN_IF_ERROR(r.Str("server.bind", &s->bind));
  EDGEBED_RETURN_IF_ERROR(r.Real("server.round_deadline_s", &s->round_deadline_s, 0.0, 1e6, true));
  EDGEBED_RETURN_IF_ERROR(r.Real("server.join_timeout_s", &s->join_timeout_s, 0.0, 1e6, true));
  EDGEBED_RETURN_IF_ERROR(r.Real("server.liveness_timeout_s", &s->liveness_timeout_s, 0.0, 1e6, true));
  EDGEBED_RETURN_IF_ERROR(r.Real("server.virtual_deadline_s", &s->virtual_deadline_s, 0.0, 1e9));
  EDGEBED_RETURN_IF_ERROR(r.Real("server.max_frame_mb", &s->max_frame_mb, 0.0, 2047.0, true));
  EDGEBED_RETURN_IF_ERROR(r.Int("server.threads", &s->server_threads, 1, 256));
  EDGEBED_RETURN_IF_ERROR(r.Int("server.max_connections", &s->max_connections, 16, 1000000));
  EDGEBED_RETURN_IF_ERROR(r.Int("server.max_connections_per_peer", &s->max_connections_per_peer, 1, 1000000));
  EDGEBED_RETURN_IF_ERROR(r.Str("channel.uplink", &c.uplink, {"ideal", "digital", "analog_ota", "digital_ota"}));
  EDGEBED_RETURN_IF_ERROR(r.Number("channel.snr_db", &c.snr_db));  // range: ChannelConfig::Validate
  EDGEBED_RETURN_IF_ERROR(r.Str("channel.snr_reference", &c.snr_reference, {"node", "sum"}));
  EDGEBED_RETURN_IF_ERROR(r.Str("channel.fading", &c.fading, {"none", "rayleigh", "rician"}));
  EDGEBED_RETURN_IF_ERROR(r.Number("channel.rician_k_db", &c.rician_k_db));  // range: ChannelConfig::Validate
  EDGEBED_RETURN_IF_ERROR(r.Number("channel.path_loss_exponent", &c.path_loss_exponent));  // range: ChannelConfig::Validate
  EDGEBED_RETURN_IF_ERROR(r.Number("channel.reference_distance_m", &c.reference_distance_m));  // range: ChannelConfig::Validate
  EDGEBED_RETURN_IF_ERROR(r.Number("channel.distance_min_m", &c.distance_min_m));  // range: ChannelConfig::Validate
  EDGEBED_RETURN_IF_ERROR(r.Number("channel.distance_max_m", &c.distance_max_m));  // range: ChannelConfig::Validate
  EDGEBED_RETURN_IF_ERROR(r.Number("channel.carrier_offset", &c.carrier_offset));  // range: ChannelConfig::Validate
  EDGEBED_RETURN_IF_ERROR(r.Number("channel.symbol_rate_hz", &c.symbol_rate_hz));  // range: ChannelConfig::Validate
  EDGEBED_RETURN_IF_ERROR(r.Number("channel.tx_power_w", &c.tx_power_w));  // range: ChannelConfig::Validate
  EDGEBED_RETURN_IF_ERROR(r.Str("channel.modulation", &c.modulation));
  EDGEBED_RETURN_IF_ERROR(r.Str("channel.fec", &c.fec));
  EDGEBED_RETURN_IF_ERROR(r.Int("channel.packet_bytes", &c.packet_bytes, 0, UINT32_MAX));  // range: ChannelConfig::Validate
  EDGEBED_RETURN_IF_ERROR(r.Int("channel.max_retransmissions", &c.max_retransmissions, 0, UINT32_MAX));  // range: ChannelConfig::Validate
  EDGEBED_RETURN_IF_ERROR(r.Number("channel.gain_threshold", &c.gain_threshold));  // range: ChannelConfig::Validate
  EDGEBED_RETURN_IF_ERROR(r.Int("channel.relay_nodes", &c.relay_nodes, 0, s->nodes));
  EDGEBED_RETURN_IF_ERROR(r.Int("population.simulated", &s->simulated, 0, s->nodes));
  EDGEBED_RETURN_IF_ERROR(r.Int("population.hosts", &s->hosts, 1, 64));
  EDGEBED_RETURN_IF_ERROR(r.Str("population.profiles", &s->profiles));
  EDGEBED_RETURN_IF_ERROR(r.Str("population.availability", &s->availability, {"always", "markov", "trace"}));
  EDGEBED_RETURN_IF_ERROR(r.Real("population.p_off", &s->p_off, 0.0, 1.0));
  EDGEBED_RETURN_IF_ERROR(r.Real("population.p_on", &s->p_on, 0.0, 1.0, true));
  EDGEBED_RETURN_IF_ERROR(r.Str("population.trace_file", &s->trace_file));
  EDGEBED_RETURN_IF_ERROR(r.Str("ota.decoder", &o.decoder, {"exact", "amp_da", "amp_da_net"}));
  EDGEBED_RETURN_IF_ERROR(r.Str("ota.decoder_path", &o.decoder_path));
  EDGEBED_RETURN_IF_ERROR(r.Int("ota.block_length", &o.block_length, 1, 4096));
  EDGEBED_RETURN_IF_ERROR(r.Int("ota.codebook_size", &o.codebook_size, 2, 65536));
  EDGEBED_RETURN_IF_ERROR(r.Int("ota.code_length", &o.code_length, 2, 4096));
  EDGEBED_RETURN_IF_ERROR(r.Bool("ota.error_feedback", &o.error_feedback));
  EDGEBED_RETURN_IF_ERROR(r.Int("ota.kmeans_iterations", &o.kmeans_iterations, 0, 1000));
  EDGEBED_RETURN_IF_ERROR(r.Int("ota.proxy_samples", &o.proxy_samples, 0, UINT32_MAX));
  EDGEBED_RETURN_IF_ERROR(r.Str("ota.aggregate", &o.aggregate, {"mean", "trimmed_mean", "median", "majority"}));
  EDGEBED_RETURN_IF_ERROR(r.Real("ota.trim", &o.trim, 0.0, 0.49));
  EDGEBED_RETURN_IF_ERROR(r.Bool("ota.soft_mean", &o.soft_mean));
  EDGEBED_RETURN_IF_ERROR(r.Int("ota.amp_iterations", &o.amp_iterations, 1, 1000));
  EDGEBED_RETURN_IF_ERROR(r.Real("ota.amp_damping", &o.amp_damping, 0.0, 0.95));
  EDGEBED_RETURN_IF_ERROR(r.Str("ota.collect", &o.collect));
  EDGEBED_RETURN_IF_ERROR(r.Str("gnn.mode", &gn.mode, {"full", "pipe", "graph", "hybrid"}));
  EDGEBED_RETURN_IF_ERROR(r.Str("gnn.layer", &gn.layer, {"gcn", "sage"}));
  EDGEBED_RETURN_IF_ERROR(r.Int("gnn.layers", &gn.layers, 1, 256));
  EDGEBED_RETURN_IF_ERROR(r.Int("gnn.hidden", &gn.hidden, 1, 4096));
  EDGEBED_RETURN_IF_ERROR(r.Int("gnn.epochs", &gn.epochs, 1, 100000));
  EDGEBED_RETURN_IF_ERROR(r.Real("gnn.learning_rate", &gn.learning_rate, 0.0, 10.0, true));
  EDGEBED_RETURN_IF_ERROR(r.Real("gnn.weight_decay", &gn.weight_decay, 0.0, 1.0));
  EDGEBED_RETURN_IF_ERROR(r.Int("gnn.parts", &gn.parts, 1, 64));
  EDGEBED_RETURN_IF_ERROR(r.Int("gnn.partitions", &gn.partitions, 1, 64));
  EDGEBED_RETURN_IF_ERROR(r.Int("gnn.chunks", &gn.chunks, 1, 4096));
  EDGEBED_RETURN_IF_ERROR(r.Str("gnn.partitioner", &gn.partitioner, {"bfs", "random"}));
  EDGEBED_RETURN_IF_ERROR(r.Int("gnn.eval_every", &gn.eval_every, 1, 100000));
  EDGEBED_RETURN_IF_ERROR(r.Real("gnn.peer_timeout_s", &gn.peer_timeout_s, 0.0, 86400.0, true));
  EDGEBED_RETURN_IF_ERROR(r.Int("gnn.checkpoint_every", &gn.checkpoint_every, 0, 100000));
  EDGEBED_RETURN_IF_ERROR(r.Int("gnn.threads", &gn.threads, 1, 256));
  EDGEBED_RETURN_IF_ERROR(r.Real("gnn.link_mbps", &gn.link_mbps, 0.0, 1e6));
  EDGEBED_RETURN_IF_ERROR(r.Real("gnn.link_delay_ms", &gn.link_delay_ms, 0.0, 1e5));
  EDGEBED_RETURN_IF_ERROR(r.Str("gnn.graph.kind", &gg.kind, {"csbm", "knn", "edgelist"}));
  EDGEBED_RETURN_IF_ERROR(r.Int("gnn.graph.vertices", &gg.vertices, 2, 10000000));
  EDGEBED_RETURN_IF_ERROR(r.Int("gnn.graph.classes", &gg.classes, 2, 1000));
  EDGEBED_RETURN_IF_ERROR(r.Int("gnn.graph.features", &gg.features, 1, 100000));
  EDGEBED_RETURN_IF_ERROR(r.Real("gnn.graph.avg_degree", &gg.avg_degree, 0.0, 1e4));
  EDGEBED_RETURN_IF_ERROR(r.Real("gnn.graph.homophily", &gg.homophily, 0.0, 1.0));
  EDGEBED_RETURN_IF_ERROR(r.Real("gnn.graph.feature_snr", &gg.feature_snr, 0.0, 100.0));
  EDGEBED_RETURN_IF_ERROR(r.Int("gnn.graph.knn_k", &gg.knn_k, 1, 1000));
  EDGEBED_RETURN_IF_ERROR(r.Str("gnn.graph.edges", &gg.edges));
  EDGEBED_RETURN_IF_ERROR(r.Str("gnn.graph.labels", &gg.labels));
  EDGEBED_RETURN_IF_ERROR(r.Str("gnn.graph.features_file", &gg.features_file));
  EDGEBED_RETURN_IF_ERROR(r.Real("gnn.graph.train_fraction", &gg.train_fraction, 0.0, 1.0, true));
  EDGEBED_RETURN_IF_ERROR(r.Real("gnn.graph.val_fraction", &gg.val_fraction, 0.0, 1.0, true));
  EDGEBED_RETURN_IF_ERROR(r.RealArray("split.widths", &sp.widths, 0.0, 1.0));
  EDGEBED_RETURN_IF_ERROR(r.Int("split.bottleneck_channels", &sp.bottleneck_channels, 1, 64));
  EDGEBED_RETURN_IF_ERROR(r.Int("split.sandwich_random", &sp.sandwich_random, 0, 64));
  EDGEBED_RETURN_IF_ERROR(r.Real("split.train_width", &sp.train_width, 0.0, 1.0));
  EDGEBED_RETURN_IF_ERROR(r.Bool("split.distill", &sp.distill));
  EDGEBED_RETURN_IF_ERROR(r.Str("split.heads", &sp.heads, {"average", "separate"}));
  EDGEBED_RETURN_IF_ERROR(r.Int("split.gradient_bits", &sp.gradient_bits, 8, 32));
  EDGEBED_RETURN_IF_ERROR(r.Int("split.batch_nodes", &sp.batch_nodes, 0, 100000));
  EDGEBED_RETURN_IF_ERROR(r.Real("split.batch_wait_ms", &sp.batch_wait_ms, 0.0, 60000.0));
  EDGEBED_RETURN_IF_ERROR(r.Int("split.decoder_threads", &sp.decoder_threads, 1, 256));
  EDGEBED_RETURN_IF_ERROR(r.Int("split.inference.requests", &inf.requests, 0, 10000000));
  EDGEBED_RETURN_IF_ERROR(r.Real("split.inference.interval_ms", &inf.interval_ms, 0.0, 1e7, true));
  EDGEBED_RETURN_IF_ERROR(r.Int("split.inference.samples_per_request", &inf.samples_per_request, 1, 10000));
  EDGEBED_RETURN_IF_ERROR(r.Real("split.inference.deadline_ms", &inf.deadline_ms, 0.0, 1e7, true));
  EDGEBED_RETURN_IF_ERROR(r.Str("split.inference.controller", &inf.controller, {"adaptive", "fixed"}));
  EDGEBED_RETURN_IF_ERROR(r.Real("split.inference.fixed_width", &inf.fixed_width, 0.0, 1.0, true));
  EDGEBED_RETURN_IF_ERROR(r.Real("split.inference.margin", &inf.margin, 0.0, 0.9));
  EDGEBED_RETURN_IF_ERROR(r.Real("split.inference.initial_kbps", &inf.initial_kbps, 0.0, 1e7, true));
  EDGEBED_RETURN_IF_ERROR(r.Bool("split.inference.compare_fixed", &inf.compare_fixed));
  EDGEBED_RETURN_IF_ERROR(r.Real("split.inference.node_gflops", &inf.node_gflops, 0.0, 1e6));
  EDGEBED_RETURN_IF_ERROR(r.Real("split.inference.server_gflops", &inf.server_gflops, 0.0, 1e6));
  return Status::Ok();
}

}  // namespace edgebed::scenario_detail
