// Federated runs: set-up from the scenario, join_ack fields, resume, the run and its outcome, and the
// evaluations (the test set overlapping the next round, the strategy's federated evaluation).
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
  if (sc.aggregation != "mean" && sc.aggregation != "norm_bound") {  // these compare whole updates: they cannot stream
    const double per_round = sc.strategy == "fedbuff" ? sc.buffer_size : std::ceil(sc.fraction * sc.nodes - 1e-9);
    spdlog::info("federation.aggregation = {} holds every update of a round before it combines them: server memory "
                 "O(updates x model), {:.1f} MB for {:.0f} updates of {:.1f} KB (mean and norm_bound stream in one accumulator)",
                 sc.aggregation, per_round * static_cast<double>(s->global.bytes()) / 1e6, per_round,
                 static_cast<double>(s->global.bytes()) / 1024.0);
  }
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
                  {"frames_received", stats.frames}, {"dropped", DroppedJson()}};
  summary.update(Outcome(done, aggregated_rounds));
  if (Status st = record.WriteSummary(summary); !st.ok()) RecordFailed(st);
  RefreshReport(/*finished=*/true);
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
    spdlog::info("{} {:>3}/{}: accuracy {:.4f}  loss {:.4f}  participants {}/{}  failures {}  {:.1f} s{}", core.round_name,
                 row["round"].get<uint32_t>(), sc.rounds, ev.accuracy, ev.loss, row["participants"].get<size_t>(),
                 row["selected"].get<size_t>(), row["failures"].get<size_t>(), row["wall_s"].get<double>(),
                 RunTimeLeft(row["round"].get<uint32_t>(), row.value("elapsed_s", 0.0)));
  };
  if (async) {
    eval_worker.Post(std::move(job));
  } else {
    job();
  }
}

}  // namespace edgebed
