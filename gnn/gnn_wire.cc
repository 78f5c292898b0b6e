#include "gnn/gnn_wire.h"

#include <cmath>
#include <cstring>

namespace edgebed {

void ToWire(const GnnConfig& c, uint32_t shard, wire::GnnSpec* s) {
  const GraphConfig& g = c.graph;
  s->set_graph_kind(g.kind);
  s->set_vertices(g.vertices);
  s->set_classes(g.classes);
  s->set_features(g.features);
  s->set_avg_degree(g.avg_degree);
  s->set_homophily(g.homophily);
  s->set_feature_snr(g.feature_snr);
  s->set_knn_k(g.knn_k);
  s->set_edges(g.edges);
  s->set_labels(g.labels);
  s->set_features_file(g.features_file);
  s->set_train_fraction(g.train_fraction);
  s->set_val_fraction(g.val_fraction);
  s->set_mode(c.mode);
  s->set_layer(c.layer);
  s->set_layers(c.layers);
  s->set_hidden(c.hidden);
  s->set_learning_rate(c.learning_rate);
  s->set_weight_decay(c.weight_decay);
  s->set_parts(c.parts);
  s->set_partitions(c.partitions);
  s->set_chunks(c.chunks);
  s->set_partitioner(c.partitioner);
  s->set_peer_timeout_s(c.peer_timeout_s);
  s->set_seed(c.seed);
  s->set_shard(shard);
  s->set_threads(c.threads);
  s->set_link_mbps(c.link_mbps);
  s->set_link_delay_ms(c.link_delay_ms);
}

GnnConfig FromWire(const wire::GnnSpec& s) {
  GnnConfig c;
  GraphConfig& g = c.graph;
  g.kind = s.graph_kind();
  g.vertices = s.vertices();
  g.classes = s.classes();
  g.features = s.features();
  g.avg_degree = s.avg_degree();
  g.homophily = s.homophily();
  g.feature_snr = s.feature_snr();
  g.knn_k = s.knn_k();
  g.edges = s.edges();
  g.labels = s.labels();
  g.features_file = s.features_file();
  g.train_fraction = s.train_fraction();
  g.val_fraction = s.val_fraction();
  c.mode = s.mode();
  c.layer = s.layer();
  c.layers = s.layers();
  c.hidden = s.hidden();
  c.learning_rate = s.learning_rate();
  c.weight_decay = s.weight_decay();
  c.parts = s.parts();
  c.partitions = s.partitions();
  c.chunks = s.chunks();
  c.partitioner = s.partitioner();
  c.peer_timeout_s = s.peer_timeout_s();
  c.seed = s.seed();
  c.threads = s.threads();
  c.link_mbps = s.link_mbps();
  c.link_delay_ms = s.link_delay_ms();
  return c;
}

void ToWire(const PeerTensor& t, wire::GnnTensor* out) {
  out->set_kind(static_cast<uint32_t>(t.kind));
  out->set_epoch(t.epoch);
  out->set_step(t.step);
  out->set_from(t.from);
  out->set_rows(t.rows);
  out->set_dim(t.dim);
  out->set_values(reinterpret_cast<const char*>(t.values.data()), t.values.size() * sizeof(float));
  out->set_arrival_s(t.arrival_s);
}

Status FromWire(const wire::GnnTensor& in, uint32_t parts, PeerTensor* out) {
  if (in.kind() >= static_cast<uint32_t>(kTensorKinds))
    return Status::InvalidArgument("gnn_tensor.kind = " + std::to_string(in.kind()) + ": allowed 0..3");
  if (in.from() >= parts)
    return Status::InvalidArgument("gnn_tensor.from = " + std::to_string(in.from()) + ": allowed 0.." + std::to_string(parts - 1));
  const uint64_t n = static_cast<uint64_t>(in.rows()) * in.dim();
  if (in.values().size() != n * sizeof(float))
    return Status::InvalidArgument("gnn_tensor.values holds " + std::to_string(in.values().size()) + " bytes; rows x dim = " +
                                   std::to_string(in.rows()) + " x " + std::to_string(in.dim()) + " needs " +
                                   std::to_string(n * sizeof(float)));
  if (!std::isfinite(in.arrival_s()) || in.arrival_s() < 0.0)
    return Status::InvalidArgument("gnn_tensor.arrival_s = " + std::to_string(in.arrival_s()) + ": allowed a finite time >= 0 s");
  out->kind = static_cast<TensorKind>(in.kind());
  out->epoch = in.epoch();
  out->step = in.step();
  out->from = in.from();
  out->rows = in.rows();
  out->dim = in.dim();
  out->arrival_s = in.arrival_s();
  out->values.resize(n);
  if (n) std::memcpy(out->values.data(), in.values().data(), n * sizeof(float));
  return Status::Ok();
}

void ToWire(const ShardStats& s, const ShardTraffic& t, wire::GnnEpochDone* d) {
  d->set_train_loss(s.train_loss);
  d->set_train_correct(s.train_correct);
  d->set_train_seen(s.train_seen);
  d->set_evaluated(s.evaluated);
  for (int k = 0; k < 3; ++k) d->add_correct(s.correct[k]), d->add_total(s.total[k]);
  d->set_test_loss(s.test_loss);
  for (int k = 0; k < kTensorKinds; ++k) d->add_sent_bytes(t.bytes[k]), d->add_sent_values(t.values[k]);
  d->set_train_s(s.train_s);
  d->set_eval_s(s.eval_s);
  d->set_stale_reads(s.stale_reads);
  d->set_fresh_reads(s.fresh_reads);
  d->set_max_staleness(s.max_staleness);
  d->set_stale_diff_sq(s.stale_diff_sq);
  d->set_stale_norm_sq(s.stale_norm_sq);
  d->set_wait_s(s.wait_s);
  d->set_virtual_train_s(s.virtual_train_s);
}

Status FromWire(const wire::GnnEpochDone& d, ShardStats* s, ShardTraffic* t) {
  if (d.correct_size() != 3 || d.total_size() != 3 || d.sent_bytes_size() != kTensorKinds ||
      d.sent_values_size() != kTensorKinds)
    return Status::InvalidArgument("gnn_epoch_done needs 3 correct/total counts (train, val, test) and 4 sent_bytes/sent_values (by kind)");
  if (!std::isfinite(d.train_loss()) || !std::isfinite(d.test_loss()))
    return Status::InvalidArgument("gnn_epoch_done.train_loss / test_loss is not finite");
  if (!std::isfinite(d.virtual_train_s()) || d.virtual_train_s() < 0.0)
    return Status::InvalidArgument("gnn_epoch_done.virtual_train_s = " + std::to_string(d.virtual_train_s()) +
                                   ": allowed a finite time >= 0 s");
  *s = ShardStats{};
  s->train_loss = d.train_loss();
  s->train_correct = d.train_correct();
  s->train_seen = d.train_seen();
  s->evaluated = d.evaluated();
  for (int k = 0; k < 3; ++k) s->correct[k] = d.correct(k), s->total[k] = d.total(k);
  s->test_loss = d.test_loss();
  s->stale_reads = d.stale_reads();
  s->fresh_reads = d.fresh_reads();
  s->max_staleness = d.max_staleness();
  s->stale_diff_sq = d.stale_diff_sq();
  s->stale_norm_sq = d.stale_norm_sq();
  s->train_s = d.train_s();
  s->eval_s = d.eval_s();
  s->wait_s = d.wait_s();
  s->virtual_train_s = d.virtual_train_s();
  for (int k = 0; k < kTensorKinds; ++k) t->bytes[k] = d.sent_bytes(k), t->values[k] = d.sent_values(k);
  return Status::Ok();
}

}  // namespace edgebed
