// Federated rounds, the receiving side: fit_res and evaluate_res checked, capped, carried by the
// uplink (or held for the superposing one), and folded into the strategy.
#include <spdlog/spdlog.h>

#include <cmath>

#include "server/federated_server.h"

namespace edgebed {

bool FederatedServer::OnModeMessage(const std::string& from, const wire::Envelope& env, const wire::FrameViews& attached) {
  switch (env.body_case()) {
    case wire::Envelope::kFitRes: OnFitRes(from, env.fit_res(), attached); return true;
    case wire::Envelope::kEvaluateRes: OnEvaluateRes(from, env.evaluate_res()); return true;
    default: return false;
  }
}

void FederatedServer::OnNodeError(const std::string& from, const wire::Error& e) {
  if (async_over_ && e.code() == wire::UNAVAILABLE) return;  // an abandoned FedBuff job's node went offline
  ServerCore::OnNodeError(from, e);
}

void FederatedServer::OnFitRes(const std::string& from, const wire::FitRes& res, const wire::FrameViews& attached) {
  if (!KnownAlive(from, "fit_res")) return;
  if (async_over_) return;  // FedBuff's abandoned jobs
  if (!rounds.Expects(from, res.round())) {
    ++stats.unexpected;
    spdlog::warn("dropped fit_res for round {} from {}: {}", res.round(), from,
                 rounds.Expects(from) ? "it was asked for another round"
                                      : std::string("not selected or already answered"));
    return;
  }
  FitResult r;
  r.node_id = from;
  r.node_index = registry.Find(from)->index;
  r.num_samples = res.num_samples();
  r.train_loss = res.train_loss();
  r.train_time_s = res.train_time_s();
  r.peak_train_bytes = res.peak_train_bytes();
  r.kept_for_backward_bytes = res.kept_for_backward_bytes();
  // Digital OTA answers carry VQ indices (the channel superposes them when the round closes);
  // every other uplink takes the update itself.
  const bool vq_answer = uplink->carries_codewords() || res.vq_indices_size() > 0;
  Status st = vq_answer ? (ota_ ? ota_->CheckIndices(res) : Status::InvalidArgument("fit_res.vq_indices is for channel.uplink = digital_ota; this run's uplink takes fit_res.update")) : wire::FromTensors(res.update(), "fit_res.update", &global.specs, &r.update, attached);
  if (!st.ok()) return RejectUpdate(from, st.message());
  if (strategy->FitControl() || res.control_delta_size() > 0) {  // SCAFFOLD: c_i+ - c_i beside the update
    if (!strategy->FitControl()) return RejectUpdate(from, "fit_res.control_delta is for federation.strategy = scaffold");
    if (res.control_delta_size() == 0) return RejectUpdate(from, "fit_res.control_delta is missing (federation.strategy = scaffold)");
    ParamSet cd;
    st = wire::FromTensors(res.control_delta(), "fit_res.control_delta", &global.specs, &cd, attached);
    if (!st.ok()) return RejectUpdate(from, st.message());
    r.control_delta = std::move(cd.flat);
  }
  if (!std::isfinite(r.train_time_s) || r.train_time_s < 0 || r.num_samples == 0)
    return RejectUpdate(from, "fit_res.num_samples must be >= 1 and fit_res.train_time_s finite and >= 0");
  if (r.node_index < assigned_samples.size() && r.num_samples > assigned_samples[r.node_index]) {
    // FedAvg weights by this count: a node may not claim more samples than its partition holds.
    ++stats.capped_samples;
    spdlog::warn("round {}: {} claims fit_res.num_samples = {}, its partition holds {}; counted as {}", rounds.round(), from,
                 r.num_samples, assigned_samples[r.node_index], assigned_samples[r.node_index]);
    r.num_samples = assigned_samples[r.node_index];
  }
  // What the node's radio sends: the encoded fit_res and the frames its update rides in.
  uint64_t res_bytes = res.ByteSizeLong();
  for (const auto& f : attached) res_bytes += f.size();
  if (async_) return OnAsyncFitRes(from, res, res_bytes, std::move(r));
  if (!vq_answer && res.aggregate_of_size() > 0) return OnRelayedAggregate(from, res, std::move(r));
  if (over_commit_target > 0 && rounds.accepted() >= over_commit_target) {
    ++over_committed;
    return Fail(from, "over-committed: the round already has its " + std::to_string(over_commit_target) + " updates");
  }
  if (!std::isfinite(res.virtual_time_s()) || res.virtual_time_s() < 0)
    return RejectUpdate(from, "fit_res.virtual_time_s must be finite and >= 0");
  r.virtual_s = res.virtual_time_s();
  energy_compute_j += res.compute_energy_j();
  if (vq_answer) {
    if (!OnTime(from, res_bytes, &r)) return;
    ota_->HoldIndices(r.node_index, std::vector<uint32_t>(res.vq_indices().begin(), res.vq_indices().end()));
  } else if (res.link_size() > 0) {
    // Carried by a channel process already: restore its erasures, take its report.
    st = ApplyErasures(res, &r.update.flat);
    if (!st.ok()) return RejectUpdate(from, st.message());
    for (const auto& l : res.link()) AddReport(l);
    link.channel_uses += res.link(0).channel_uses();
    link.airtime_s += res.link(0).airtime_s();
    if (!OnTime(from, res_bytes, &r)) return;
    st = strategy->Accumulate(r);
    if (!st.ok()) return Fail(from, "update lost: " + st.message());
  } else if (uplink->superposes()) {
    if (!OnTime(from, res_bytes, &r)) return;  // the shared airtime is added when the round closes
    Answered(from, r);
    return ota_->HoldUpdate(std::move(r));  // transmitted all at once when the round closes
  } else {
    st = uplink->Carry(r.node_index, rounds.round(), &r.update.flat, res_bytes, &link);
    if (!st.ok()) return Fail(from, "update lost: " + st.message());
    if (!OnTime(from, res_bytes, &r)) return;
    st = strategy->Accumulate(r);
    if (!st.ok()) return Fail(from, "update lost: " + st.message());
  }
  Answered(from, r);
}

// A refused update: counted, logged, answered BAD_TENSOR naming the field, and the node's round failed.
void FederatedServer::RejectUpdate(const std::string& from, const std::string& m) {
  ++stats.bad_tensor;
  spdlog::error("rejected the update of {}: {}", from, m);
  SendError(from, wire::BAD_TENSOR, m);
  Fail(from, "bad update: " + m);
}

// Virtual time: the node's own seconds (download + training) plus its upload, which is the
// channel's airtime where the channel models it, else bits over the profile's uplink rate. An
// update completing after server.virtual_deadline_s is a straggler's and is not aggregated.
bool FederatedServer::OnTime(const std::string& from, uint64_t res_bytes, FitResult* r) {
  NodeRecord* rec = registry.Find(from);
  if (rec) rec->num_samples = r->num_samples;  // what selection predicts with from now on
  const auto [upload_s, radio_j] = UploadCost(rec, r->node_index, res_bytes, link);
  energy_radio_j += radio_j;
  r->virtual_s += upload_s;
  if (sc.virtual_deadline_s > 0 && r->virtual_s > sc.virtual_deadline_s) {
    ++stragglers;
    Fail(from, "straggler: done at virtual " + std::to_string(r->virtual_s) + " s, after server.virtual_deadline_s = " +
                   std::to_string(sc.virtual_deadline_s) + " s");
    return false;
  }
  return true;
}

std::pair<double, double> FederatedServer::UploadCost(const NodeRecord* rec, uint32_t index, uint64_t frame_bytes,
                                                      const LinkAccounting& l) const {
  auto it = l.per_node.find(index);
  if (it != l.per_node.end() && it->second.airtime_s > 0) return {it->second.airtime_s, it->second.tx_energy_j};
  if (const DeviceProfile* p = rec ? &registry.Profile(*rec) : nullptr; p && p->uplink_bps > 0) {
    const double upload_s = static_cast<double>(frame_bytes) * 8.0 / p->uplink_bps;
    return {upload_s, p->tx_power_w * upload_s};
  }
  return {0.0, 0.0};
}

void FederatedServer::Answered(const std::string& id, const FitResult& r) {
  rounds.Accept(id);
  answered_ids.push_back(id);
  virtual_round_s = std::max(virtual_round_s, r.virtual_s);
  if (auto* rec = registry.Find(id)) {
    ++rec->rounds_ok;
    rec->num_samples = r.num_samples;
  }
  train_time_max_s = std::max(train_time_max_s, r.train_time_s);
  peak_train_bytes_max = std::max(peak_train_bytes_max, r.peak_train_bytes);
  kept_for_backward_max = std::max(kept_for_backward_max, r.kept_for_backward_bytes);
  train_loss_sum += r.train_loss * static_cast<double>(r.num_samples);
  samples_sum += r.num_samples;
}

void FederatedServer::AddReport(const wire::LinkReport& l) { link.AddNode(l.node_index(), FromLinkReport(l)); }

// fit_res.erased: [start, end) pairs of values the channel lost; they become NaN (erasures).
Status FederatedServer::ApplyErasures(const wire::FitRes& res, std::vector<float>* v) {
  if (res.erased_size() % 2 != 0) return Status::InvalidArgument("fit_res.erased must hold [start, end) pairs");
  for (int i = 0; i < res.erased_size(); i += 2) {
    const uint64_t lo = res.erased(i), hi = res.erased(i + 1);
    if (lo >= hi || hi > v->size())
      return Status::InvalidArgument("fit_res.erased range [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                     ") is outside [0, " + std::to_string(v->size()) + "]");
    std::fill(v->begin() + static_cast<std::ptrdiff_t>(lo), v->begin() + static_cast<std::ptrdiff_t>(hi), NAN);
  }
  return Status::Ok();
}

// Analog OTA through a channel process: one update standing for several selected nodes.
void FederatedServer::OnRelayedAggregate(const std::string& from, const wire::FitRes& res, FitResult r) {
  for (const auto& id : res.aggregate_of()) {
    if (!rounds.Expects(id)) {
      ++stats.unexpected;
      spdlog::error("dropped an OTA aggregate from {}: {} is not waiting for round {}", from, id, rounds.round());
      return SendError(from, wire::UNEXPECTED, "fit_res.aggregate_of names " + id + ", not selected or already answered");
    }
  }
  for (const auto& l : res.link()) AddReport(l);
  link.channel_uses += res.ota_channel_uses();
  link.airtime_s += res.ota_airtime_s();
  link.control_bits += res.ota_control_bits();
  ota_info = {{"active", res.ota_active()}, {"via", "channel process"}};
  if (res.ota_active() > 0) {
    r.num_samples = res.ota_active();
    Status st = strategy->Accumulate(r);
    if (!st.ok()) spdlog::error("round {}: OTA aggregate: {}", rounds.round(), st.ToString());
  }
  FitResult each = r;
  each.num_samples = res.num_samples() / static_cast<uint64_t>(res.aggregate_of_size());
  for (const auto& id : res.aggregate_of()) Answered(id, each);
}

void FederatedServer::OnEvaluateRes(const std::string& from, const wire::EvaluateRes& res) {
  if (!KnownAlive(from, "evaluate_res")) return;
  if (res.round() != rounds.round() || !eval_pending.erase(from)) {
    ++stats.unexpected;
    spdlog::warn("dropped evaluate_res for round {} from {}: not asked for", res.round(), from);
    return;
  }
  if (!std::isfinite(res.loss()) || !(res.accuracy() >= 0.0f && res.accuracy() <= 1.0f)) {
    ++stats.bad_tensor;
    SendError(from, wire::BAD_TENSOR, "evaluate_res.loss must be finite and evaluate_res.accuracy in [0, 1]");
    return;
  }
  EvaluateResult e{from, res.num_samples(), res.loss(), res.accuracy()};
  const uint32_t index = registry.Find(from)->index;
  if (index < assigned_samples.size() && e.num_samples > assigned_samples[index]) {  // as for fit_res: weights are counts
    ++stats.capped_samples;
    spdlog::warn("round {}: {} claims evaluate_res.num_samples = {}, its partition holds {}; counted as {}", res.round(),
                 from, e.num_samples, assigned_samples[index], assigned_samples[index]);
    e.num_samples = assigned_samples[index];
  }
  eval_results.push_back(std::move(e));
}

}  // namespace edgebed
