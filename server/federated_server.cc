// Federated rounds, the round loop: selection, fit_ins, the round's close and aggregation, the
// evaluation overlapping the next round, rows, checkpoints, resume, the run's outcome.
#include "server/federated_server.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "record/files.h"
#include "server/checkpoint.h"
#include "server/strategy_options.h"
#include "splitnets/device_profile.h"
#include "splitnets/transfer.h"

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

Result<std::unique_ptr<ServerCore>> FederatedServer::Create(const Scenario& sc, std::atomic<bool>* stop) {
  std::unique_ptr<FederatedServer> s(new FederatedServer(sc, stop));
  s->select_rng = MakeRng(sc.seed, "select");
  if (!sc.transfer.backbone.empty()) {
    auto crc = FileCrc32(sc.transfer.backbone);
    if (!crc.ok())
      return Status::NotFound("transfer.backbone: " + crc.status().message() +
                              " (make one with: edgebed transfer pretrain --out " + sc.transfer.backbone + ")");
    s->backbone_crc32 = crc.value();
  }
  EDGEBED_ASSIGN_OR_RETURN(DataPlan plan, PlanData(ScenarioDataSpec(sc)));
  s->train_rows = plan.train_rows.size();
  if (sc.model == "torchscript") {
    auto bytes = ReadFile(sc.torchscript.path);
    if (!bytes.ok()) return Status::NotFound("model.path: " + bytes.status().message());
    s->module_bytes = std::move(bytes).value();
  }
  EDGEBED_ASSIGN_OR_RETURN(s->learner, Learner::Create(ScenarioModel(sc, &plan), sc.seed));
  EDGEBED_ASSIGN_OR_RETURN(s->test, LoadTestSet(plan));
  // The same check the launcher makes: one batch through the model (and TorchScript's FLOPs).
  EDGEBED_RETURN_IF_ERROR(s->learner->Check(s->test));
  if (sc.model == "torchscript")
    spdlog::info("model {}: {} tensors, {} values trained and sent; {:.2f} MFLOPs to train on one sample ({})",
                 sc.torchscript.path, s->learner->specs().size(), s->learner->GetParams().numel(),
                 s->learner->TrainFlops() / 1e6, sc.torchscript.train_flops > 0 ? "model.train_flops" : "3 x the counted forward pass");
  if (sc.simulated > 0 && s->learner->TrainFlops() == 0)
    spdlog::warn("model.train_flops: the module's FLOPs could not be counted (it does not freeze); simulated devices "
                 "will train in zero virtual time unless model.train_flops is given");
  s->global = s->learner->GetParams();
  if (!sc.transfer.backbone.empty())
    spdlog::info("transfer from {} ({}): the top {} IRBs train, classes {}; an update carries {:.1f} KB, the full model "
                 "{:.1f} KB", sc.transfer.backbone, sc.transfer.mode,
                 s->learner->TrainableBlocks(), sc.data.classes.empty() ? "all" : FormatClasses(sc.data.classes),
                 s->global.bytes() / 1024.0, s->learner->FullModelBytes() / 1024.0);
  // What each node holds: the cap on the sample count its updates may claim (and the load-time
  // check that the partition works at all, e.g. Dirichlet with too few samples per node).
  EDGEBED_ASSIGN_OR_RETURN(s->assigned_samples, ScenarioPartitionSizes(sc, plan));
  EDGEBED_ASSIGN_OR_RETURN(const StrategyOptions so, ScenarioStrategy(sc));
  EDGEBED_ASSIGN_OR_RETURN(s->strategy, MakeStrategy(so));
  EDGEBED_ASSIGN_OR_RETURN(s->uplink, MakeUplink(sc.channel, sc.nodes, sc.seed));
  EDGEBED_ASSIGN_OR_RETURN(s->ota_, OtaReceiver::Create(OtaOptions(sc, plan), s->uplink.get(), s->global));
  spdlog::info("uplink: {}", s->uplink->Describe());
  if (sc.strategy == "fedbuff") {
    const bool virtual_order = sc.simulated == sc.nodes;  // every node on the virtual clock
    s->async_ = std::make_unique<AsyncSchedule>(virtual_order);
    spdlog::info("FedBuff: {} nodes train at all times; a server step every {} updates, weighted {} by staleness; "
                 "updates complete in order of {}", static_cast<uint32_t>(std::ceil(sc.fraction * sc.nodes - 1e-9)),
                 sc.buffer_size, sc.staleness == "sqrt" ? "1/sqrt(1+s)" : "1 (constant)",
                 virtual_order ? "virtual finish time (reproducible for a seed)"
                               : "arrival (real node processes: not reproducible bit for bit)");
  }
  return std::unique_ptr<ServerCore>(std::move(s));
}

void FederatedServer::FillJoinAck(uint32_t, wire::JoinAck* ack) {
  auto* d = ack->mutable_data();
  d->set_format(sc.data.format);
  d->set_dir(sc.data.dir);
  d->set_train(sc.data.train);
  d->set_train_labels(sc.data.train_labels);
  d->set_test(sc.data.test);
  d->set_held_out(sc.data.held_out);
  for (double v : sc.data.mean) d->add_mean(v);
  for (double v : sc.data.std) d->add_std(v);
  d->set_train_rows(train_rows);
  if (sc.model == "torchscript") {
    auto* t = ack->mutable_torchscript();
    t->set_module(module_bytes);
    t->set_loss(sc.torchscript.loss);
    t->set_train_flops(static_cast<double>(learner->TrainFlops()));  // measured once here, the same for every node
  }
  if (sc.transfer.backbone.empty()) return;
  auto* t = ack->mutable_transfer();
  t->set_backbone(sc.transfer.backbone);
  t->set_backbone_crc32(backbone_crc32);
  t->set_mode(sc.transfer.mode);
  t->set_blocks(static_cast<uint32_t>(sc.transfer.blocks));
  t->set_memory_budget_kb(sc.transfer.memory_budget_kb);
  t->set_batch_size(sc.batch_size);
  t->set_momentum(sc.momentum > 0.0);
}

Status FederatedServer::Resume() {
  auto ck = ReadCheckpoint();
  if (!ck.ok()) return ck.status();
  if (!ck->global.SameLayout(global))
    return Status::InvalidArgument(CheckpointPath(sc.output_dir) + " holds another model's tensors than model.name = " + sc.model);
  std::istringstream rng_state(ck->select_rng);
  rng_state >> select_rng;
  if (rng_state.fail()) return Status::Corruption(CheckpointPath(sc.output_dir) + ": select_rng state does not parse");
  if (Status st = strategy->LoadState(ck->state); !st.ok())
    return Status::InvalidArgument(CheckpointPath(sc.output_dir) + ": " + st.message());
  global = std::move(ck->global);
  virtual_clock_s = ck->virtual_clock_s;
  first_round = ck->round + 1;
  model_version_ = ck->round;  // FedBuff: jobs in flight at the crash are lost; new ones start from this model
  spdlog::info("resuming run {} after round {} of {} (from {})", run_id, ck->round, sc.rounds, CheckpointPath(sc.output_dir));
  return Status::Ok();
}

Status FederatedServer::Run() {
  EDGEBED_RETURN_IF_ERROR(PrepareOutput());
  EDGEBED_RETURN_IF_ERROR(first_round > 1 ? record.Reopen(sc.output_dir, FederatedCsvColumns(), first_round - 1)
                                            : record.Open(sc.output_dir, FederatedCsvColumns()));

  const auto run_start = Clock::now();
  EDGEBED_RETURN_IF_ERROR(AwaitJoins());

  if (first_round == 1)
    EvaluateAndWrite({{"round", 0}, {"train_loss", 0.0}, {"selected", 0}, {"participants", 0}, {"failures", 0},
                        {"failed_nodes", json::array()}, {"aggregated", false}, {"uplink_bytes", 0},
                        {"downlink_bytes", 0}, {"wall_s", 0.0}, {"overhead_s", 0.0}, {"elapsed_s", Since(run_start)}},
                       /*async=*/false);
  const uint32_t done = RunRounds([&](uint32_t r) { async_ ? RunStep(r, run_start) : RunRound(r, run_start); });
  if (async_) {  // FedBuff: jobs still training when the last step ends are abandoned, their answers dropped
    spdlog::info("FedBuff: {} jobs still training at the end are abandoned", async_->in_flight());
    async_over_ = true;
    rounds.Abandon();
  }
  WaitEval();
  const bool complete = stop_reason.empty() && !stopping() && done == sc.rounds;
  Shutdown(complete ? "run complete" : "run stopped: " + (stop_reason.empty() ? std::string("by a signal") : stop_reason));

  const EvalStats final_eval = Evaluate(global);
  Status saved = learner->Save(sc.output_dir + "/final_model.pt");
  if (!saved.ok()) RecordFailed(Status::IoError("cannot write " + sc.output_dir + "/final_model.pt: " + saved.message()));
  json summary = {{"run_id", run_id},
                  {"rounds_completed", done},
                  {"final_test_accuracy", final_eval.accuracy},
                  {"final_test_loss", final_eval.loss},
                  {"wall_s", Since(run_start)},
                  {"model", sc.model},
                  {"parameters", global.numel()},
                  {"update_bytes", global.bytes()},  // what one node's update carries (float32)
                  {"full_model_bytes", learner->FullModelBytes()},
                  {"trainable_blocks", learner->TrainableBlocks()},
                  {"kept_for_backward_bytes_analytic", sc.transfer.backbone.empty() ? json(nullptr) : json(KeptForBackwardAnalytic(
                       sc.transfer.mode, learner->TrainableBlocks(), static_cast<int>(sc.batch_size),
                       ScenarioModel(sc).num_classes))},
                  {"dropped", DroppedJson()}};
  summary.update(Outcome(done, aggregated_rounds));
  if (Status st = record.WriteSummary(summary); !st.ok()) RecordFailed(st);
  EDGEBED_RETURN_IF_ERROR(RecordError());
  const std::string status = summary["status"].get<std::string>();
  if (status != "complete") {
    spdlog::warn("run {}: {} of {} rounds, {} aggregated; final test accuracy {:.4f}; outputs in {}", status, done,
                 sc.rounds, aggregated_rounds, final_eval.accuracy, sc.output_dir);
    return Status::Unavailable("run " + status + ": " + summary["stop_reason"].get<std::string>());
  }
  spdlog::info("run complete: {} rounds, final test accuracy {:.4f}, {:.1f} s; outputs in {}", done,
               final_eval.accuracy, Since(run_start), sc.output_dir);
  return Status::Ok();
}

// What selection knows of each available node: predicted virtual completion from its profile,
// and its expected channel gain this round.
std::vector<Candidate> FederatedServer::Candidates(uint32_t r) {
  std::vector<Candidate> out;
  const uint64_t model_bytes = global.bytes();
  const uint64_t avg_samples = train_rows / std::max<uint32_t>(1, sc.nodes);
  for (const auto& id : registry.AliveIds()) {
    const NodeRecord* rec = registry.Find(id);
    const DeviceProfile& p = rec->profile;
    const VirtualCost c = PredictRound(p, model_bytes, learner->TrainFlops(),
                                       rec->num_samples ? rec->num_samples : avg_samples, sc.local_epochs);
    const double upload_s = p.uplink_bps > 0 ? static_cast<double>(model_bytes) * 8.0 / p.uplink_bps : 0.0;
    out.push_back({id, c.total_s() + upload_s, uplink->ExpectedGain(rec->index, r)});
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

json FederatedServer::FederatedEvaluate(uint32_t r) {
  const std::vector<std::string> nodes = strategy->ConfigureEvaluate(r, answered_ids);
  if (nodes.empty()) return json();
  eval_pending.clear();
  eval_results.clear();
  wire::Envelope ins;
  ins.mutable_evaluate_ins()->set_round(r);
  wire::ToTensors(global, ins.mutable_evaluate_ins()->mutable_params());
  for (const auto& id : nodes)
    if (registry.Find(id) && Send(id, ins) > 0) eval_pending.insert(id);
  const size_t asked = eval_pending.size();
  const auto t0 = Clock::now();
  while (!eval_pending.empty() && Since(t0) < sc.liveness_timeout_s) PollOnce(std::chrono::milliseconds(100));
  eval_pending.clear();
  const EvaluateSummary s = strategy->AggregateEvaluate(r, asked, eval_results);
  json out = {{"asked", s.asked}, {"answered", s.answered}, {"samples", s.samples}};
  if (s.has_figures) {
    out["accuracy"] = s.accuracy;
    out["loss"] = s.loss;
  }
  return out;
}

// Evaluates `params` on the test set (the learner is used for nothing else while a run goes on).
EvalStats FederatedServer::Evaluate(const ParamSet& params) {
  (void)learner->SetParams(params);
  auto ev = learner->Evaluate(test);
  if (ev.ok()) return ev.value();
  spdlog::error("test-set evaluation failed: {}", ev.status().message());  // the loss is then NaN (null in JSON)
  EvalStats failed;
  failed.loss = std::nan("");
  return failed;
}

void FederatedServer::EvaluateAndWrite(json row, bool async) {
  WaitEval();
  ServerCheckpoint ck = NewCheckpoint(row["round"].get<uint32_t>());
  ck.virtual_clock_s = virtual_clock_s;
  std::ostringstream rng_state;
  rng_state << select_rng;
  ck.select_rng = rng_state.str();
  ck.global = global;
  ck.state = strategy->SaveState();
  auto job = [this, row = std::move(row), ck = std::move(ck)]() mutable {
    const EvalStats ev = Evaluate(ck.global);
    row["test_accuracy"] = ev.accuracy;
    row["test_loss"] = ev.loss;
    row["eval_s"] = ev.seconds;
    if (!WriteRow(row)) return;
    if (ck.round > 0 && !WriteCheckpoint(ck)) return;
    spdlog::info("round {:>3}/{}: accuracy {:.4f}  loss {:.4f}  participants {}/{}  failures {}  {:.1f} s",
                 row["round"].get<uint32_t>(), sc.rounds, ev.accuracy, ev.loss, row["participants"].get<size_t>(),
                 row["selected"].get<size_t>(), row["failures"].get<size_t>(), row["wall_s"].get<double>());
  };
  if (async) {
    eval_worker.Post(std::move(job));
  } else {
    job();
  }
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
  json failed = json::array();
  for (const auto& f : rounds.failures()) failed.push_back({{"node", f.node_id}, {"reason", f.reason}});
  json row = {{"round", r},
              {"train_loss", samples_sum ? train_loss_sum / static_cast<double>(samples_sum) : 0.0},
              {"selected", selected},
              {"participants", participants},
              {"failures", rounds.failures().size()},
              {"stragglers", stragglers},
              {"dropouts", dropouts},
              {"over_committed", over_committed},
              {"virtual_round_s", virtual_round_s},
              {"virtual_clock_s", virtual_clock_s},
              {"energy_compute_j", energy_compute_j},
              {"energy_radio_j", energy_radio_j},
              {"energy_j", energy_compute_j + energy_radio_j},
              {"failed_nodes", failed},
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
  stragglers = dropouts = over_committed = 0;
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
  for (const auto& id : selected) {
    const auto* rec = registry.Find(id);
    FillNodeFitIns(r, rec->index, DeriveSeed(sc.seed, "local-train", rec->index, r), ins);
    if (Send(id, ins_env) == 0) {  // its connection is gone: a failure now, not selected again
      rounds.Unreachable(id, "could not send fit_ins: the node's connection is gone");
      registry.MarkGone(id);
      spdlog::warn("round {}: {} failed: its connection is gone", r, id);
      continue;
    }
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
