// FedBuff (Nguyen et al. 2022): asynchronous buffered aggregation. A run's rounds are server steps.
// ceil(fraction x nodes) nodes train at all times, each from the model current when it was sent; a
// step applies the next buffer_size updates in completion order (async_schedule.h: virtual finish
// time when every node is simulated, else arrival), each scaled by its staleness weight, as
//   x <- x + server_lr x (1 / buffer_size) x sum_i w(s_i) update_i,   w(s) = 1 / sqrt(1 + s),
// and every finished node is replaced at once by an idle one drawn with the selection generator.
#include <spdlog/spdlog.h>

#include <cmath>

#include "server/federated_server.h"
#include "splitnets/device_profile.h"

namespace edgebed {

bool FederatedServer::Dispatch(const std::string& id, uint32_t step) {
  const NodeRecord* rec = registry.Find(id);
  wire::Envelope env;
  auto* ins = env.mutable_fit_ins();
  FillFitIns(step, ins);
  const uint64_t seq = ++async_seq_;
  FillNodeFitIns(step, rec->index, DeriveSeed(sc.seed, "local-train-async", rec->index, seq), ins);
  if (Send(id, env) == 0) {
    registry.MarkGone(id);
    spdlog::warn("step {}: {} could not be sent its job: its connection is gone", step, id);
    return false;
  }
  rounds.Expect(id, step);
  registry.Touch(id, Clock::now());
  AsyncJob job;
  job.node_id = id;
  job.round = step;
  job.version = model_version_;
  job.seq = seq;
  job.start_s = virtual_clock_s;
  // A lower bound on the job's virtual duration: the download and training its profile predicts
  // for its partition (the node host computes the same), with 10% to spare.
  const uint64_t samples = rec->index < assigned_samples.size() ? assigned_samples[rec->index] : 0;
  job.min_duration_s = 0.9 * PredictRound(registry.Profile(*rec), global.bytes(), learner->TrainFlops(), samples, sc.local_epochs).total_s();
  if (Status st = async_->Dispatch(std::move(job)); !st.ok()) spdlog::error("step {}: {}", step, st.message());
  ++step_sent;
  return true;
}

void FederatedServer::TopUp(uint32_t step) {
  const auto concurrency = static_cast<size_t>(std::ceil(sc.fraction * sc.nodes - 1e-9));
  while (async_->in_flight() < concurrency && !stopping()) {
    std::vector<std::string> idle;
    for (const auto& id : registry.AliveIds())
      if (registry.Find(id)->ready && !async_->InFlight(id)) idle.push_back(id);
    if (idle.empty()) return;
    std::uniform_int_distribution<size_t> pick(0, idle.size() - 1);
    Dispatch(idle[pick(select_rng)], step);
  }
}

void FederatedServer::OnAsyncFitRes(const std::string& from, const wire::FitRes& res, uint64_t res_bytes, FitResult r) {
  if (res.aggregate_of_size() > 0 || res.link_size() > 0)
    return RejectUpdate(from, "fit_res.aggregate_of and fit_res.link come from a channel process; this run has none");
  if (!std::isfinite(res.virtual_time_s()) || res.virtual_time_s() < 0)
    return RejectUpdate(from, "fit_res.virtual_time_s must be finite and >= 0");
  r.virtual_s = res.virtual_time_s();
  LinkAccounting l;
  Status st = uplink->Carry(r.node_index, res.round(), &r.update.flat, res_bytes, &l);
  if (!st.ok()) return Fail(from, "update lost: " + st.message());
  NodeRecord* rec = registry.Find(from);
  if (rec) rec->num_samples = r.num_samples;
  const auto [upload_s, radio_j] = UploadCost(rec, r.node_index, res_bytes, l);
  r.virtual_s += upload_s;
  rounds.Accept(from);
  st = async_->Complete(from, std::move(r), std::move(l), res_bytes, radio_j, res.compute_energy_j());
  if (!st.ok()) spdlog::error("step {}: {}", rounds.round(), st.message());
}

void FederatedServer::CollectAsyncFailures() {
  FailSilentNodes();
  for (const auto& id : async_->Training()) {
    if (rounds.Expects(id)) continue;  // still owes its answer
    std::string reason = "failed";
    for (const auto& f : rounds.failures())
      if (f.node_id == id) reason = f.reason;
    (void)async_->Fail(id, reason);
  }
}

void FederatedServer::ApplyJob(AsyncJob job) {
  virtual_clock_s = std::max(virtual_clock_s, job.finish_s);
  if (!job.ok) {  // its slot is free; counted in the step where it completes, like an update
    step_failures.push_back({{"node", job.node_id}, {"reason", job.failure}});
    return;
  }
  FitResult& r = job.result;
  const uint64_t staleness = model_version_ - job.version;
  const double w = StalenessWeight(sc.staleness, static_cast<uint32_t>(std::min<uint64_t>(staleness, UINT32_MAX)));
  if (w != 1.0)
    for (float& v : r.update.flat) v = static_cast<float>(v * w);  // lost values stay NaN
  if (Status st = strategy->Accumulate(r); !st.ok()) {
    spdlog::error("step {}: the update of {} is lost: {}", rounds.round(), r.node_id, st.message());
    return;
  }
  for (const auto& [index, s] : job.link.per_node) link.AddNode(index, s);
  link.channel_uses += job.link.channel_uses;
  link.airtime_s += job.link.airtime_s;
  link.control_bits += job.link.control_bits;
  energy_radio_j += job.radio_j;
  energy_compute_j += job.compute_j;
  step_uplink_bytes += job.uplink_bytes;
  ++step_applied;
  step_updates.push_back({{"node", r.node_id}, {"staleness", staleness}, {"weight", w}, {"sent_at_s", job.start_s},
                          {"done_at_s", job.finish_s}});
  Answered(r.node_id, r);
}

void FederatedServer::RunStep(uint32_t step, Clock::time_point run_start) {
  const auto t0 = Clock::now();
  rounds.Next(step);  // jobs sent in earlier steps go on training
  ResetRoundAccounting();
  step_applied = step_sent = 0;
  step_updates = json::array();
  step_failures = json::array();
  step_uplink_bytes = 0;
  const double clock_at_start = virtual_clock_s;
  strategy->BeginRound(step, global);
  TopUp(step);
  const auto deadline = rounds.DeadlineFrom(t0);
  while (step_applied < sc.buffer_size && !stopping() && Clock::now() < deadline) {
    CollectAsyncFailures();
    bool applied_any = false;
    while (step_applied < sc.buffer_size) {
      std::optional<AsyncJob> job = async_->PopReady();
      if (!job) break;
      ApplyJob(std::move(*job));
      TopUp(step);  // the finished node's slot goes to an idle node, sent the model as it is now
      applied_any = true;
    }
    if (step_applied >= sc.buffer_size) break;
    if (async_->in_flight() == 0) {  // nothing training and nobody to send: the step cannot fill
      spdlog::error("step {}: no node is training and none is idle; {} of {} updates", step, step_applied, sc.buffer_size);
      break;
    }
    if (!applied_any) PollOnce(std::chrono::milliseconds(50));
  }
  const auto t_agg = Clock::now();
  const size_t needed = std::max<size_t>(1, static_cast<size_t>(std::ceil(sc.min_quorum * sc.buffer_size - 1e-9)));
  bool aggregated = false;
  if (step_applied >= needed) {
    aggregated = Aggregate(step);
    if (aggregated) ++model_version_;
  } else {
    spdlog::error("step {}: {} of buffer_size = {} updates arrived (quorum {}); the global model is kept", step,
                  step_applied, sc.buffer_size, needed);
  }
  virtual_round_s = virtual_clock_s - clock_at_start;
  json row = RoundRow(step, step_sent, step_applied, aggregated, Since(t_agg), Since(t0), run_start);
  double staleness_sum = 0.0, staleness_max = 0.0;
  for (const auto& u : step_updates) {
    staleness_sum += u["staleness"].get<double>();
    staleness_max = std::max(staleness_max, u["staleness"].get<double>());
  }
  // Counted by completion, not arrival (answers arrive across step boundaries): the applied updates'
  // frames and the failed jobs, so that a seed gives the same rows.
  row["uplink_bytes"] = step_uplink_bytes;
  PutFailures(step_failures, &row);
  row["staleness_mean"] = step_updates.empty() ? 0.0 : staleness_sum / static_cast<double>(step_updates.size());
  row["staleness_max"] = staleness_max;
  row["updates"] = std::move(step_updates);
  row["in_flight"] = async_->in_flight();
  EvaluateAndWrite(std::move(row), /*async=*/true);
}

}  // namespace edgebed
