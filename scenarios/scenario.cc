#include "scenarios/scenario.h"

#include "splitnets/partition.h"

#include "splitnets/device_profile.h"
#include "splitnets/transfer.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <numeric>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "scenarios/strategy_checks.h"
#include "scenarios/toml_fields.h"

namespace edgebed {
namespace {

const char kDefaultText[] =
#include "scenarios/default_scenario.inc"
    ;

using namespace toml_fields;

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

// What a file may hold beyond the scalar fields (custom profiles, arrays of tables) and the checks
// across fields, after Fields has read them all.
Status Read(Reader& r, const toml::table& root, Scenario* s) {
  EDGEBED_RETURN_IF_ERROR(Fields(r, s));
  TransferConfig& tr = s->transfer;
  ChannelConfig& c = s->channel;
  OtaConfig& o = s->ota;
  GnnConfig& gn = s->gnn;
  GraphConfig& gg = gn.graph;
  SplitConfig& sp = s->split;
  SplitInferenceConfig& inf = sp.inference;
  EDGEBED_RETURN_IF_ERROR(CheckStrategyFields(*s));
  if (s->bind.rfind("tcp://", 0) != 0 && s->bind.rfind("ipc://", 0) != 0)
    return Status::InvalidArgument("server.bind = '" + s->bind + "' must be tcp://host:port or ipc://path");
  EDGEBED_RETURN_IF_ERROR(c.Validate());  // cross-field checks and the liquid name sets

  if (auto* profiles = root.get_as<toml::table>("profiles")) {
    for (const auto& [key, node] : *profiles) {
      const std::string name(key.str()), base = "profiles." + name;
      if (!node.is_table()) return Status::InvalidArgument(base + " must be a table of profile fields");
      DeviceProfile p;
      p.name = name;
      EDGEBED_RETURN_IF_ERROR(r.Real(base + ".train_gflops", &p.train_gflops, 0.0, 1e6));
      EDGEBED_RETURN_IF_ERROR(r.Real(base + ".memory_mb", &p.memory_mb, 0.0, 1e9));
      EDGEBED_RETURN_IF_ERROR(r.Real(base + ".uplink_bps", &p.uplink_bps, 0.0, 1e12));
      EDGEBED_RETURN_IF_ERROR(r.Real(base + ".downlink_bps", &p.downlink_bps, 0.0, 1e12));
      EDGEBED_RETURN_IF_ERROR(r.Real(base + ".tx_power_w", &p.tx_power_w, 0.0, 1e3));
      EDGEBED_RETURN_IF_ERROR(r.Real(base + ".compute_power_w", &p.compute_power_w, 0.0, 1e5));
      EDGEBED_RETURN_IF_ERROR(r.Real(base + ".ms_per_sample", &p.ms_per_sample, 0.0, 1e7));
      s->custom_profiles[name] = p;
    }
  }
  if (auto mix = ParseProfileMix(s->profiles, "population.profiles", s->custom_profiles); !mix.ok()) return mix.status();
  if (s->availability == "trace" && !std::ifstream(s->trace_file))
    return Status::InvalidArgument("population.trace_file = '" + s->trace_file + "' cannot be opened");

  if (o.collect.size() > 0 && c.uplink != "digital_ota")
    return Status::InvalidArgument("ota.collect needs channel.uplink = \"digital_ota\" (it stores VQ indices)");

  // [gnn], [gnn.graph]: GNN training (model.name = "gnn"); read before the faults, which name its shards and epochs.
  gn.seed = s->seed;
  if (gg.train_fraction + gg.val_fraction >= 1.0)
    return Status::InvalidArgument("gnn.graph.train_fraction + gnn.graph.val_fraction must be below 1 (the rest is the test set)");
  if (s->is_gnn()) {
    if (gg.kind == "knn" && gg.vertices > 60000)
      return Status::InvalidArgument("gnn.graph.vertices = " + std::to_string(gg.vertices) + " for knn: allowed 2..60000 (Fashion-MNIST training images)");
    if (gg.kind == "edgelist" && (gg.edges.empty() || gg.labels.empty()))
      return Status::InvalidArgument("gnn.graph.kind = \"edgelist\" needs gnn.graph.edges and gnn.graph.labels (files)");
    if ((gn.mode == "pipe" || gn.mode == "hybrid") && gn.parts > gn.layers)
      return Status::InvalidArgument("gnn.parts = " + std::to_string(gn.parts) + " pipeline stages for gnn.layers = " +
                                     std::to_string(gn.layers) + ": allowed 1..gnn.layers (each stage holds a layer)");
    if (gn.mode != "full" && gn.parts < 2)
      return Status::InvalidArgument("gnn.parts = 1 with gnn.mode = \"" + gn.mode + "\": allowed 2..64 (one shard is gnn.mode = \"full\")");
    if (gn.chunks > gg.vertices || gn.parts > gg.vertices || gn.partitions > gg.vertices)
      return Status::InvalidArgument("gnn.chunks, gnn.parts and gnn.partitions must not exceed gnn.graph.vertices");
    if (gn.mode == "hybrid" && gn.partitions < 2)
      return Status::InvalidArgument("gnn.partitions = 1 with gnn.mode = \"hybrid\": allowed 2..64 (one partition is gnn.mode = \"pipe\" with gnn.chunks = 1)");
    if (s->simulated > 0) return Status::InvalidArgument("population.simulated must be 0 with model gnn (shards are real processes)");
    s->nodes = gn.shards();  // one node process per shard (full: none, trained in-process)
    s->rounds = gn.epochs;
  }
  EDGEBED_RETURN_IF_ERROR(ReadTableArray(r, root, "faults.corrupt", "{node = N, kind = \"sign_flip\"}", [&](Reader& sub) {
    CorruptFault f;
    Status st = sub.Int("node", &f.node, 0, int64_t{s->nodes} - 1);
    if (st.ok()) st = sub.Str("kind", &f.kind, {"sign_flip", "scale", "random"});
    if (st.ok()) st = sub.Real("factor", &f.factor, -1e6, 1e6);
    if (st.ok()) st = sub.Real("std", &f.std, 0.0, 1e6, true);
    if (st.ok()) st = sub.Int("from_round", &f.from_round, 1, s->rounds);
    if (!st.ok()) return st;
    if (f.kind == "sign_flip") f.factor = -1.0;
    if (f.factor == 0.0) return Status::InvalidArgument("factor = 0 is not a corruption; allowed: non-zero");
    s->corrupt.push_back(f);
    return Status::Ok();
  }));
  EDGEBED_RETURN_IF_ERROR(ReadTableArray(r, root, "faults.crash", "{node = N, round = R}", [&](Reader& sub) {
    CrashFault f;
    Status st = sub.Int("node", &f.node, 0, int64_t{s->nodes} - 1);
    if (st.ok()) st = sub.Int("round", &f.round, 1, s->rounds);
    if (st.ok()) s->crashes.push_back(f);
    return st;
  }));
  EDGEBED_RETURN_IF_ERROR(ReadTableArray(r, root, "split.bandwidth", "{t_s = 0.0, kbps = 1000.0}", [&](Reader& sub) {
    RatePoint p;
    Status st = sub.Real("t_s", &p.t_s, 0.0, 1e9);
    if (st.ok()) st = sub.Real("kbps", &p.kbps, 0.0, 1e7, true);
    if (st.ok()) sp.bandwidth.push_back(p);
    return st;
  }));
  if (auto trace = BandwidthTrace::Create(sp.bandwidth); !trace.ok()) return trace.status();
  EDGEBED_RETURN_IF_ERROR(ScenarioSlimConfig(*s).Validate());
  if (s->is_split()) {
    if (WidthIndex(ScenarioSlimConfig(*s), sp.train_width) < 0 && sp.train_width > 0.0)
      return Status::InvalidArgument("split.train_width = " + std::to_string(sp.train_width) + " is not one of split.widths");
    if (WidthIndex(ScenarioSlimConfig(*s), inf.fixed_width) < 0)
      return Status::InvalidArgument("split.inference.fixed_width = " + std::to_string(inf.fixed_width) +
                                     " is not one of split.widths");
    if (c.uplink != "ideal" && c.uplink != "digital")
      return Status::InvalidArgument("channel.uplink = \"" + c.uplink +
                                     "\" cannot carry split activations; model slimsplit needs ideal or digital");
    if (!s->data.classes.empty()) return Status::InvalidArgument("data.classes is not supported with model slimsplit (all 10 classes)");
    if (s->data.format != "fashion-mnist") return Status::InvalidArgument("model slimsplit learns Fashion-MNIST; data.format must be fashion-mnist");
    if (s->simulated > 0) return Status::InvalidArgument("population.simulated must be 0 with model slimsplit (split nodes are real processes)");
    if (inf.requests > 0 && s->nodes < 1) return Status::InvalidArgument("split.inference needs a node");
  }
  EDGEBED_RETURN_IF_ERROR(r.CheckNoUnknown());
  if (s->model == "torchscript" && s->torchscript.path.empty())
    return Status::InvalidArgument("model.name = \"torchscript\" needs model.path (a module saved by torch.jit.save)");
  if (s->model != "torchscript" && !s->torchscript.path.empty())
    return Status::InvalidArgument("model.path is set but model.name = \"" + s->model + "\"; a TorchScript module needs model.name = \"torchscript\"");
  if (s->partition == "natural" && s->data.format != "npz")
    return Status::InvalidArgument("data.partition = natural needs client ids: data.format = \"npz\" with an array client_id");
  if (!tr.backbone.empty()) {
    if (s->model != "irbnet" && s->model != "irbnet_hs")
      return Status::InvalidArgument("transfer.backbone is set but model.name = \"" + s->model +
                                     "\"; transfer learning needs an IRB network (irbnet or irbnet_hs)");
    const ModelSpec spec = ScenarioModel(*s);
    auto k = BlocksWithinBudget(spec.transfer, spec.num_classes);
    if (!k.ok()) return k.status();
  }
  return Status::Ok();
}

}  // namespace

SlimConfig ScenarioSlimConfig(const Scenario& sc) {
  SlimConfig c;
  c.widths = sc.split.widths;
  c.bottleneck_channels = static_cast<int>(sc.split.bottleneck_channels);
  return c;
}

ModelSpec ScenarioModel(const Scenario& sc, const DataPlan* plan) {
  ModelSpec m;
  m.name = sc.model;
  if (plan) m.num_classes = plan->train.num_classes;
  else if (!sc.data.classes.empty()) m.num_classes = static_cast<int>(sc.data.classes.size());
  m.torchscript = sc.torchscript;
  m.transfer = sc.transfer;
  m.transfer.batch_size = static_cast<int>(sc.batch_size);
  m.transfer.momentum = sc.momentum > 0.0;
  return m;
}

DataSpec ScenarioDataSpec(const Scenario& sc) {
  DataSpec d = sc.data;
  d.seed = sc.seed;
  return d;
}

PartitionSpec ScenarioPartition(const Scenario& sc) {
  PartitionSpec spec;
  spec.kind = sc.partition;
  spec.alpha = sc.dirichlet_alpha;
  spec.shards_per_node = sc.shards_per_node;
  spec.num_nodes = sc.nodes;
  spec.seed = sc.seed;
  spec.min_samples = sc.min_samples;
  spec.samples_per_node = sc.samples_per_node;
  return spec;
}

Result<Dataset> LoadScenarioData(const Scenario& sc, bool train) {
  EDGEBED_ASSIGN_OR_RETURN(DataPlan plan, PlanData(ScenarioDataSpec(sc)));
  if (!train) return LoadTestSet(plan);
  std::vector<uint32_t> all(plan.train_rows.size());
  std::iota(all.begin(), all.end(), 0u);
  return LoadTrainRows(plan, all);
}

Result<std::vector<uint64_t>> ScenarioPartitionSizes(const Scenario& sc, const DataPlan& plan) {
  // The labels are all a partition depends on: the samples stay on disk.
  EDGEBED_ASSIGN_OR_RETURN(auto parts, PartitionPlan(plan, ScenarioPartition(sc)));
  std::vector<uint64_t> sizes;
  for (const auto& p : parts) sizes.push_back(p.size());
  return sizes;
}

const std::string& DefaultScenarioText() {
  static const std::string text(kDefaultText);
  return text;
}

Result<Scenario> ParseScenario(const std::string& toml_text, const std::vector<std::string>& overrides,
                               const std::string& source_name) {
  toml::table root;
  try {
    root = toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& e) {
    std::ostringstream m;
    m << source_name << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
      << e.description();
    return Status::InvalidArgument(m.str());
  }
  for (const auto& o : overrides) EDGEBED_RETURN_IF_ERROR(ApplyOverride(root, o));
  Scenario s;
  Reader r(root);
  Status st = Read(r, root, &s);
  if (!st.ok()) return Status::InvalidArgument(source_name + ": " + st.message());
  return s;
}

Result<Scenario> LoadScenario(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot read scenario file " + path);
  std::stringstream buf;
  buf << in.rdbuf();
  try {  // a file with no field at all is a mistake (a wrong file, a cut copy), not the default
    if (toml::parse(buf.str(), path).empty())
      return Status::InvalidArgument(path + " holds no fields; for the built-in default scenario give no file");
  } catch (const toml::parse_error&) {  // ParseScenario reports it with line and column
  }
  return ParseScenario(buf.str(), overrides, path);
}

std::string Scenario::ToToml() const {
  toml::table t;
  Scenario copy = *this;
  Writer w(&t);
  (void)Fields(w, &copy);  // writes every declared field; it checks nothing
  if (!custom_profiles.empty()) {
    toml::table profiles_tbl;
    for (const auto& [name, p] : custom_profiles)
      profiles_tbl.insert(name, toml::table{{"train_gflops", p.train_gflops}, {"memory_mb", p.memory_mb},
                                            {"uplink_bps", p.uplink_bps}, {"downlink_bps", p.downlink_bps},
                                            {"tx_power_w", p.tx_power_w}, {"compute_power_w", p.compute_power_w},
                                            {"ms_per_sample", p.ms_per_sample}});
    t.insert("profiles", profiles_tbl);
  }
  toml::array bw_arr, crash_arr, corrupt_arr;
  for (const auto& p : split.bandwidth) bw_arr.push_back(toml::table{{"t_s", p.t_s}, {"kbps", p.kbps}});
  if (!bw_arr.empty()) t.get_as<toml::table>("split")->insert("bandwidth", bw_arr);
  for (const auto& c : crashes) crash_arr.push_back(toml::table{{"node", int64_t{c.node}}, {"round", int64_t{c.round}}});
  for (const auto& c : corrupt)
    corrupt_arr.push_back(toml::table{{"node", int64_t{c.node}}, {"kind", c.kind}, {"factor", c.factor},
                                      {"std", c.std}, {"from_round", int64_t{c.from_round}}});
  toml::table faults;
  if (!crash_arr.empty()) faults.insert("crash", crash_arr);
  if (!corrupt_arr.empty()) faults.insert("corrupt", corrupt_arr);
  if (!faults.empty()) t.insert("faults", faults);
  std::ostringstream out;
  out << t << "\n";
  return out.str();
}

}  // namespace edgebed
