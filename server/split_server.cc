// Split learning (private to server/): per round each node's encoder sends its bottlenecks, the
// shared decoder answers with gradients; then the inference passes under the bandwidth trace.
#include "server/split_server.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <set>

#include "server/checkpoint.h"

namespace edgebed {

Result<std::unique_ptr<ServerCore>> SplitServer::Create(const Scenario& sc, std::atomic<bool>* stop) {
  auto test = LoadScenarioData(sc, false);
  if (!test.ok()) return test.status();
  auto split = SplitService::Create(SplitOptions(sc), std::move(test.value()));
  if (!split.ok()) return split.status();
  std::unique_ptr<SplitServer> s(new SplitServer(sc, stop));
  s->split = std::move(split.value());
  return std::unique_ptr<ServerCore>(std::move(s));
}

bool SplitServer::OnModeMessage(const std::string& from, const wire::Envelope& env, const wire::FrameViews&) {
  switch (env.body_case()) {
    case wire::Envelope::kSplitForward: OnSplitForward(from, env.split_forward()); return true;
    case wire::Envelope::kSplitDone: OnSplitDone(from, env.split_done()); return true;
    case wire::Envelope::kSplitInferDone:
      if (KnownAlive(from, "split_infer_done") && infer_pass == env.split_infer_done().pass()) rounds.Release(from);
      return true;
    default: return false;
  }
}

void SplitServer::FillJoinAck(uint32_t, wire::JoinAck* ack) { split->FillJoinAck(ack); }

// ---- split learning ----------------------------------------------------------------------------
bool SplitServer::SplitExpected(const std::string& from, const std::string& what) {
  if (!KnownAlive(from, what.c_str())) return false;
  if (rounds.Expects(from)) return true;
  ++stats.unexpected;
  spdlog::error("dropped {} from '{}': it has no round or inference pass in progress", what, from);
  SendError(from, wire::UNEXPECTED, what + " outside the node's round or inference pass");
  return false;
}

void SplitServer::OnSplitForward(const std::string& from, const wire::SplitForward& f) {
  if (!SplitExpected(from, "split_forward")) return;
  const bool training = f.request() == 0 && infer_pass == 0;
  Status st = (f.request() > 0) == (infer_pass > 0) && f.round() == (infer_pass > 0 ? infer_pass : rounds.round())
                  ? split->CheckForward(f)
                  : Status::InvalidArgument("split_forward.round = " + std::to_string(f.round()) + " (request " +
                                            std::to_string(f.request()) + ") is not the " +
                                            (infer_pass > 0 ? "inference pass " + std::to_string(infer_pass)
                                                            : "round " + std::to_string(rounds.round())) + " in progress");
  if (st.ok() && training)  // a node waits for each step's gradients before its next forward
    for (const auto& q : queue)
      if (q.from == from)
        st = Status::InvalidArgument("split_forward step " + std::to_string(f.step()) + " came while step " +
                                     std::to_string(q.f.step()) + " of the same node waits for the decoder");
  wire::Envelope out;
  if (st.ok() && !training) st = split->OnForward(registry.Find(from)->index, f, out.mutable_split_backward());
  if (!st.ok()) {
    ++stats.bad_tensor;
    spdlog::error("refused split_forward from {}: {}", from, st.message());
    return SendError(from, wire::BAD_TENSOR, st.message());
  }
  if (!training) {
    Send(from, out);
    return;
  }
  if (f.steps_total() > 0) NoteProgress(from, f.round(), static_cast<float>(f.step()) / static_cast<float>(f.steps_total()));
  queue.push_back({from, f, Clock::now()});
  if (sc.split.batch_nodes == 1) AnswerQueued(1);  // one node's batch per decoder step, at once
}

std::chrono::milliseconds SplitServer::AfterPoll() {
  constexpr std::chrono::milliseconds kIdle(200);
  const size_t cap = sc.split.batch_nodes > 0 ? sc.split.batch_nodes : SIZE_MAX;
  while (!queue.empty()) {
    std::set<std::string> waiting;  // nodes with a batch queued
    for (const auto& q : queue) waiting.insert(q.from);
    size_t training = 0;  // nodes that owe this round's answer: each can still send a batch
    for (const auto& id : rounds.Pending()) training += registry.Find(id) && registry.Find(id)->alive;
    const double waited_ms = 1000.0 * Since(queue.front().at);
    if (queue.size() < cap && waiting.size() < training && waited_ms < sc.split.batch_wait_ms)
      return std::chrono::milliseconds(std::max<int64_t>(1, static_cast<int64_t>(std::ceil(sc.split.batch_wait_ms - waited_ms))));
    AnswerQueued(std::min(cap, queue.size()));
  }
  return kIdle;
}

void SplitServer::AnswerQueued(size_t count) {
  std::vector<Queued> take(std::make_move_iterator(queue.begin()), std::make_move_iterator(queue.begin() + static_cast<std::ptrdiff_t>(count)));
  queue.erase(queue.begin(), queue.begin() + static_cast<std::ptrdiff_t>(count));
  std::vector<SplitService::Forward> forwards;
  std::vector<const Queued*> from;
  for (const auto& q : take) {
    // A node that left, failed or fell silent while its batch waited gets no step.
    if (!rounds.Expects(q.from) || !registry.Find(q.from) || !registry.Find(q.from)->alive) continue;
    forwards.push_back({registry.Find(q.from)->index, &q.f});
    from.push_back(&q);
  }
  if (forwards.empty()) return;
  auto replies = split->TrainForwards(forwards);
  for (size_t i = 0; i < replies.size(); ++i) {
    if (!replies[i].ok()) {
      ++stats.bad_tensor;
      spdlog::error("refused split_forward from {}: {}", from[i]->from, replies[i].status().message());
      SendError(from[i]->from, wire::BAD_TENSOR, replies[i].status().message());
      continue;
    }
    wire::Envelope out;
    *out.mutable_split_backward() = std::move(replies[i]).value();
    Send(from[i]->from, out);
  }
}

void SplitServer::OnSplitDone(const std::string& from, const wire::SplitDone& d) {
  if (!SplitExpected(from, "split_done")) return;
  Status st = split->OnDone(registry.Find(from)->index, rounds.round(), d);
  if (!st.ok()) {
    ++stats.bad_tensor;
    SendError(from, wire::BAD_TENSOR, st.message());
    return Fail(from, st.message());
  }
  rounds.Accept(from);
}

void SplitServer::RunSplitRound(uint32_t r, Clock::time_point run_start) {
  const auto t0 = Clock::now();
  rounds.Begin(r);
  downlink_bytes = 0;
  for (const auto& id : registry.AliveIds()) {
    if (!registry.Find(id)->ready) continue;
    wire::Envelope env;
    split->MakeRound(r, registry.Find(id)->index, env.mutable_split_round());
    if (Send(id, env) == 0) {
      rounds.Unreachable(id, "could not send split_round: the node's connection is gone");
      registry.MarkGone(id);
      continue;
    }
    rounds.Expect(id);
    registry.Touch(id, Clock::now());
  }
  const size_t selected = rounds.expected() + rounds.failures().size();
  AwaitPending(rounds.DeadlineFrom(t0));
  queue.clear();  // batches of nodes that failed the round: never answered
  json row = split->EndRound(r, r == sc.rounds || stopping());
  row["selected"] = selected;
  PutFailures(RoundFailures(), &row);
  row["downlink_bytes"] = downlink_bytes;
  row["wall_s"] = Since(t0);
  row["elapsed_s"] = Since(run_start);
  if (WriteRow(row)) {
    ServerCheckpoint ck = NewCheckpoint(r);
    auto state = split->SaveState();
    if (!state.ok()) return RecordFailed(state.status());
    ck.state = std::move(state).value();
    if (!WriteCheckpoint(ck)) return;
  }
  std::string widths;
  for (const auto& [w, a] : row["accuracy_by_width"].items()) widths += fmt::format(" {}:{:.4f}", w, a.get<double>());
  spdlog::info("round {:>3}/{}: accuracy by width{}  participants {}/{}  BER {:.2e}  {:.1f} s{}", r, sc.rounds, widths,
               row["participants"].get<size_t>(), selected, row["bottleneck_ber"].get<double>(), row["wall_s"].get<double>(),
               RunTimeLeft(r, row["elapsed_s"].get<double>()));
}

// Inference passes on the lowest-index ready node: the scenario's controller, then (compare_fixed)
// the fixed width over the same trace.
json SplitServer::RunSplitInference() {
  const auto& inf = sc.split.inference;
  std::vector<std::string> passes = {inf.controller};
  if (inf.compare_fixed && inf.controller == "adaptive") passes.push_back("fixed");
  std::string server_node;
  uint32_t best = UINT32_MAX;
  for (const auto& id : registry.AliveIds())
    if (registry.Find(id)->ready && registry.Find(id)->index < best) best = registry.Find(id)->index, server_node = id;
  if (server_node.empty()) {
    spdlog::error("split inference: no node is alive to serve requests");
    return nullptr;
  }
  for (size_t p = 0; p < passes.size() && !stopping(); ++p) {
    infer_pass = static_cast<uint32_t>(p + 1);
    rounds.Begin(rounds.round());  // a pass: who serves, and whether it failed
    rounds.Expect(server_node);
    wire::Envelope env;
    split->MakeInference(infer_pass, passes[p], env.mutable_split_infer_ins());
    spdlog::info("split inference pass {}: {} serves {} requests, controller {}", infer_pass, server_node, inf.requests,
                 passes[p]);
    registry.Touch(server_node, Clock::now());
    if (Send(server_node, env) == 0) rounds.Abandon();
    AwaitPending(rounds.DeadlineFrom(Clock::now()));
    for (const auto& f : rounds.failures()) spdlog::error("split inference pass {}: {} failed: {}", infer_pass, f.node_id, f.reason);
  }
  infer_pass = 0;
  auto report = split->EndInference(sc.output_dir);
  if (!report.ok()) {
    RecordFailed(report.status());
    return nullptr;
  }
  return std::move(report).value();
}

Status SplitServer::Resume() {
  auto ck = ReadCheckpoint();
  if (!ck.ok()) return ck.status();
  if (Status st = split->LoadState(ck->state); !st.ok())
    return Status::InvalidArgument(CheckpointPath(sc.output_dir) + ": " + st.message());
  first_round = ck->round + 1;
  spdlog::info("resuming split-learning run {} after round {} of {} (from {})", run_id, ck->round, sc.rounds,
               CheckpointPath(sc.output_dir));
  return Status::Ok();
}

Status SplitServer::Run() {
  EDGEBED_RETURN_IF_ERROR(PrepareOutput());
  EDGEBED_RETURN_IF_ERROR(first_round > 1 ? record.Reopen(sc.output_dir, FederatedCsvColumns(), first_round - 1)
                                            : record.Open(sc.output_dir, FederatedCsvColumns()));
  const auto run_start = Clock::now();
  EDGEBED_RETURN_IF_ERROR(AwaitJoins());
  const uint32_t done = RunRounds([&](uint32_t r) { RunSplitRound(r, run_start); });
  json inference;
  if (sc.split.inference.requests > 0 && !stopping()) inference = RunSplitInference();
  Shutdown(stop_reason.empty() && !stopping() ? "run complete" : "run stopped");
  Status saved = split->SaveModels(sc.output_dir);
  if (!saved.ok()) RecordFailed(saved);
  json summary = split->Summary();
  const auto& widths = summary["widths"];
  summary.update({{"run_id", run_id},
                  {"model", sc.model},
                  {"rounds_completed", done},
                  {"final_test_accuracy", widths.empty() ? json(nullptr) : widths.back()["test_accuracy"]},
                  {"wall_s", Since(run_start)},
                  {"inference", inference},
                  {"frames_received", stats.frames}, {"dropped", DroppedJson()}});
  summary.update(Outcome(done, done));
  EDGEBED_RETURN_IF_ERROR(record.WriteSummary(summary));
  RefreshReport(/*finished=*/true);
  EDGEBED_RETURN_IF_ERROR(RecordError());
  if (summary["status"] != "complete") return Status::Unavailable("split run " + summary["status"].get<std::string>() + ": " + summary["stop_reason"].dump());
  spdlog::info("split run complete: {} rounds, widest test accuracy {}, {:.1f} s; outputs in {}", done,
               summary["final_test_accuracy"].dump(), Since(run_start), sc.output_dir);
  if (!inference.is_null() && inference.contains("passes"))
    for (const auto& p : inference["passes"])
      spdlog::info("inference pass {} ({}): deadline met on {:.1f}% of {} requests, mean width {:.2f}, accuracy {:.4f}",
                   p["pass"].get<int>(), p["controller"].get<std::string>(), 100 * p["deadline_met"].get<double>(),
                   p["requests"].get<size_t>(), p["mean_width"].get<double>(), p["accuracy"].get<double>());
  return Status::Ok();
}

}  // namespace edgebed
