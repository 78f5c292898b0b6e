// Federated rounds, the synchronous loop: selection, fit_ins, the round's close and aggregation,
// and the round's metrics row (FedBuff's steps reuse the fit_ins, aggregation and row).
#include <spdlog/spdlog.h>

#include <cmath>
#include <fstream>
#include <optional>
#include <set>

#include "server/federated_server.h"
#include "splitnets/device_profile.h"

namespace edgebed {
namespace {

// This process's resident set and its peak so far [MB] (Linux /proc).
std::pair<double, double> RssMb() {
  std::ifstream in("/proc/self/status");
  double rss = 0, hwm = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) rss = std::stod(line.substr(6)) / 1024.0;
    if (line.rfind("VmHWM:", 0) == 0) hwm = std::stod(line.substr(6)) / 1024.0;
  }
  return {rss, hwm};
}

}  // namespace

// What selection knows of each available node: predicted virtual completion from its profile,
// and its expected channel gain this round.
std::vector<Candidate> FederatedServer::Candidates(uint32_t r) {
  std::vector<Candidate> out;
  const uint64_t model_bytes = global.bytes();
  const uint64_t avg_samples = train_rows / std::max<uint32_t>(1, sc.nodes);
  const std::vector<const NodeRecord*> alive = registry.AliveRecords();
  out.reserve(alive.size());  // 100,000 candidates: grown by doubling they took twice the memory
  for (const NodeRecord* rec : alive) {
    const DeviceProfile& p = registry.Profile(*rec);
    const VirtualCost c = PredictRound(p, model_bytes, learner->TrainFlops(),
                                       rec->num_samples ? rec->num_samples : avg_samples, sc.local_epochs);
    const double upload_s = p.uplink_bps > 0 ? static_cast<double>(model_bytes) * 8.0 / p.uplink_bps : 0.0;
    out.push_back({rec->id, c.total_s() + upload_s, uplink->ExpectedGain(rec->index, r)});
  }
  return out;
}

json FederatedServer::LinkJson() const {
  json nodes = json::array();
  for (const auto& [k, s] : link.per_node)
    nodes.push_back({{"node", k}, {"snr_db", s.snr_db}, {"payload_bits", s.payload_bits}, {"coded_bits", s.coded_bits},
                     {"channel_uses", s.channel_uses}, {"airtime_s", s.airtime_s}, {"tx_energy_j", s.tx_energy_j},
                     {"packets", s.packets}, {"lost_packets", s.lost_packets},
                     {"retransmissions", s.retransmissions}, {"active", s.active}});
  return nodes;
}


// What every node's fit_ins of round (or step) `r` shares: the global model, SCAFFOLD's c, training settings.
void FederatedServer::FillFitIns(uint32_t r, wire::FitIns* ins) {
  ins->set_round(r);
  wire::ToTensors(global, ins->mutable_params());
  if (const std::vector<float>* c = strategy->FitControl()) wire::ToTensors(ParamSet{global.specs, *c}, ins->mutable_control());
  ins->set_local_epochs(sc.local_epochs);
  ins->set_batch_size(sc.batch_size);
  ins->set_learning_rate(static_cast<float>(sc.learning_rate));
  ins->set_momentum(static_cast<float>(sc.momentum));
  ins->set_optimizer(sc.optimizer);
  ins->set_weight_decay(static_cast<float>(sc.weight_decay));
  ins->set_deadline_s(sc.round_deadline_s);
}

// A node's own fields: its training seed, the faults the scenario puts on it, FedProx's mu.
void FederatedServer::FillNodeFitIns(uint32_t r, uint32_t index, uint64_t seed, wire::FitIns* ins) {
  ins->set_seed(seed);
  float corrupt = 0.0f, noise = 0.0f;
  for (const auto& c : sc.corrupt)
    if (c.node == index && r >= c.from_round) {
      if (c.kind == "random") noise = static_cast<float>(c.std);
      else corrupt = static_cast<float>(c.factor);
    }
  ins->set_corrupt_factor(corrupt);
  ins->set_corrupt_noise_std(noise);
  if (sc.strategy == "fedprox") ins->set_proximal_mu(static_cast<float>(sc.proximal_mu));
  bool crash = false;
  for (const auto& c : sc.crashes) crash |= (c.node == index && c.round == r);
  ins->set_crash_mid_round(crash);
}

// The metrics row of round (or step) `r` from the round's accounting; the evaluation adds the test figures.
json FederatedServer::RoundRow(uint32_t r, size_t selected, size_t participants, bool aggregated, double aggregate_s,
                               double wall, Clock::time_point run_start) {
  json row = {{"round", r},
              {"train_loss", samples_sum ? train_loss_sum / static_cast<double>(samples_sum) : 0.0},
              {"selected", selected},
              {"participants", participants},
              {"stragglers", stragglers},
              {"over_committed", over_committed},
              {"virtual_round_s", virtual_round_s},
              {"virtual_clock_s", virtual_clock_s},
              {"energy_compute_j", energy_compute_j},
              {"energy_radio_j", energy_radio_j},
              {"energy_j", energy_compute_j + energy_radio_j},
              {"aggregated", aggregated},
              {"ota", ota_info},
              {"uplink_bytes", uplink_bytes},
              {"uplink_control_bytes", control_bytes},
              {"downlink_bytes", downlink_bytes},
              {"uplink_payload_bits", link.payload_bits},
              {"uplink_channel_uses", link.channel_uses},
              {"uplink_airtime_s", link.airtime_s},
              {"uplink_tx_energy_j", link.tx_energy_j},
              {"uplink_control_bits", link.control_bits},
              {"lost_packets", link.lost_packets},
              {"retransmissions", link.retransmissions},
              {"link_per_node", LinkJson()},
              {"train_time_max_s", train_time_max_s},
              {"peak_train_kb_max", static_cast<double>(peak_train_bytes_max) / 1024.0},
              {"kept_for_backward_kb_max", static_cast<double>(kept_for_backward_max) / 1024.0},
              {"aggregate_s", aggregate_s},
              {"wall_s", wall},
              {"overhead_s", std::max(0.0, wall - train_time_max_s)},
              {"elapsed_s", Since(run_start)}};
  PutFailures(RoundFailures(), &row);
  const auto [rss, peak] = RssMb();
  if (aggregated)
    for (const auto& [key, value] : strategy->RoundFigures()) row[key] = value;
  row["server_rss_mb"] = rss;
  row["server_peak_rss_mb"] = peak;
  return row;
}

// The strategy's new global model from round (or step) `r`'s updates; false (model kept) when it fails.
bool FederatedServer::Aggregate(uint32_t r) {
  auto next = strategy->AggregateFit(r, global, rounds.failures());
  if (!next.ok()) {
    spdlog::error("round {}: aggregation failed: {}", r, next.status().ToString());
    return false;
  }
  global = std::move(next.value());
  ++aggregated_rounds;
  return true;
}

// Zeroes what a round (or step) accounts: its participants' figures, link, energy, failures by kind.
void FederatedServer::ResetRoundAccounting() {
  train_time_max_s = train_loss_sum = 0.0;
  peak_train_bytes_max = kept_for_backward_max = 0;
  samples_sum = uplink_bytes = downlink_bytes = control_bytes = 0;
  link = LinkAccounting();
  ota_info = json();
  virtual_round_s = energy_compute_j = energy_radio_j = 0.0;
  stragglers = over_committed = 0;
  answered_ids.clear();
}

void FederatedServer::RunRound(uint32_t r, Clock::time_point run_start) {
  const auto t0 = Clock::now();
  rounds.Begin(r);
  ResetRoundAccounting();

  const Selection selection = strategy->ConfigureFit(r, Candidates(r), select_rng);
  const auto& selected = selection.ids;
  over_commit_target = selection.target;
  strategy->BeginRound(r, global);
  wire::Envelope ins_env;
  auto* ins = ins_env.mutable_fit_ins();
  FillFitIns(r, ins);
  if (ota_) {  // digital OTA: the round's codebook goes out with fit_ins
    Status st = ota_->BeginRound(r, global, ins);
    if (!st.ok()) spdlog::error("round {}: fitting the VQ codebook failed: {}", r, st.message());
  }
  // A node host gets the model once a round: its other nodes' fit_ins point back to that copy
  // (made on the first such node: a federation of real nodes never needs it).
  std::optional<wire::Envelope> light_env;
  std::set<std::string> has_model;  // host connections that got this round's model
  for (const auto& id : selected) {
    const auto* rec = registry.Find(id);
    const std::string& route = registry.Route(*rec);
    const bool hosted = !route.empty() && route != id;
    const bool light = hosted && has_model.count(route) > 0;
    if (light && !light_env) {
      light_env = ins_env;
      light_env->mutable_fit_ins()->clear_params();
      light_env->mutable_fit_ins()->clear_control();
      light_env->mutable_fit_ins()->set_params_as_before(true);
    }
    wire::Envelope& env = light ? *light_env : ins_env;
    FillNodeFitIns(r, rec->index, DeriveSeed(sc.seed, "local-train", rec->index, r), env.mutable_fit_ins());
    if (Send(id, env) == 0) {  // its connection is gone: a failure now, not selected again
      rounds.Unreachable(id, "could not send fit_ins: the node's connection is gone");
      registry.MarkGone(id);
      spdlog::warn("round {}: {} failed: its connection is gone", r, id);
      continue;
    }
    if (hosted) has_model.insert(route);
    rounds.Expect(id);
    registry.Touch(id, Clock::now());
  }
  const size_t needed = std::max<size_t>(
      1, static_cast<size_t>(std::ceil(sc.min_quorum * static_cast<double>(selected.size()) - 1e-9)));

  AwaitPending(rounds.DeadlineFrom(t0));

  const auto t_agg = Clock::now();
  if (ota_) {  // a superposing uplink: what it held crosses the channel now, as one update
    OtaRoundResult o = ota_->CloseRound(r, *strategy, link);
    if (o.held) {
      ota_info = std::move(o.info);
      if (o.delivered) virtual_round_s += link.airtime_s;
      else rounds.DiscardAccepted();  // nothing reached the server
    }
  }
  if (sc.virtual_deadline_s > 0 && stragglers > 0) virtual_round_s = std::max(virtual_round_s, sc.virtual_deadline_s);
  virtual_clock_s += virtual_round_s;
  bool aggregated = false;
  if (rounds.accepted() >= needed) {
    aggregated = Aggregate(r);
  } else {
    spdlog::error("round {}: only {} of {} selected nodes answered, quorum is {}; the global model is kept", r,
                  rounds.accepted(), selected.size(), needed);
  }
  const double aggregate_s = Since(t_agg);
  json node_eval;
  if (aggregated) node_eval = FederatedEvaluate(r);
  const double wall = Since(t0);

  json row = RoundRow(r, selected.size(), rounds.accepted(), aggregated, aggregate_s, wall, run_start);
  row["excluded_by_deadline"] = selection.excluded;
  row["node_eval"] = node_eval;
  EvaluateAndWrite(std::move(row), /*async=*/true);
}

}  // namespace edgebed
