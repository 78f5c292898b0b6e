// GNN training (private to server/): hands out shards, tells them where their peers are, orders
// epochs and combines the shards' reports; the first shard that fails stops the run.
#include "server/gnn_server.h"

#include <spdlog/spdlog.h>

#include "codecs/state_bytes.h"
#include "server/checkpoint.h"

namespace edgebed {

Result<std::unique_ptr<ServerCore>> GnnServer::Create(const Scenario& sc, std::atomic<bool>* stop) {
  auto gnn = GnnService::Create(GnnOptions(sc));
  if (!gnn.ok()) return gnn.status();
  std::unique_ptr<GnnServer> s(new GnnServer(sc, stop));
  s->gnn = std::move(gnn.value());
  return std::unique_ptr<ServerCore>(std::move(s));
}

bool GnnServer::OnModeMessage(const std::string& from, const wire::Envelope& env, const wire::FrameViews&) {
  switch (env.body_case()) {
    case wire::Envelope::kGnnReady: OnGnnReady(from, env.gnn_ready()); return true;
    case wire::Envelope::kGnnEpochDone: OnGnnEpochDone(from, env.gnn_epoch_done()); return true;
    default: return false;
  }
}

void GnnServer::OnNodeError(const std::string& from, const wire::Error& e) {
  if (e.code() == wire::REJECTED && registry.Find(from)) {  // it cannot build its shard: the run cannot start
    setup_failure = from + ": " + wire::Printable(e.message());
    registry.MarkGone(from);
    spdlog::error("{} cannot take its GNN shard: {}", from, wire::Printable(e.message()));
    return;
  }
  ServerCore::OnNodeError(from, e);
}

void GnnServer::FillJoinAck(uint32_t index, wire::JoinAck* ack) { gnn->FillJoinAck(index, ack); }

// ---- GNN training ------------------------------------------------------------------------------
void GnnServer::OnGnnReady(const std::string& from, const wire::GnnReady& r) {
  if (!KnownAlive(from, "gnn_ready")) return;
  NodeRecord* rec = registry.Find(from);
  if (Status st = gnn->OnReady(rec->index, r); !st.ok()) {
    ++stats.bad_tensor;
    spdlog::error("refused gnn_ready from {}: {}", from, st.message());
    return SendError(from, wire::BAD_TENSOR, st.message());
  }
  registry.MarkReady(from);
  rounds.Release(from);
}

void GnnServer::OnGnnEpochDone(const std::string& from, const wire::GnnEpochDone& d) {
  if (!KnownAlive(from, "gnn_epoch_done")) return;
  if (!rounds.Expects(from)) {
    ++stats.unexpected;
    spdlog::error("dropped gnn_epoch_done (epoch {}) from '{}': it has no epoch in progress", d.epoch(), from);
    return SendError(from, wire::UNEXPECTED, "gnn_epoch_done outside the node's epoch");
  }
  if (Status st = gnn->OnEpochDone(registry.Find(from)->index, rounds.round(), d); !st.ok()) {
    ++stats.bad_tensor;
    SendError(from, wire::BAD_TENSOR, st.message());
    return Fail(from, "refused its epoch report: " + st.message());
  }
  rounds.Accept(from);
}

Status GnnServer::Resume() {
  auto ck = ReadCheckpoint();
  if (!ck.ok()) return ck.status();
  StateReader r(ck->state, CheckpointPath(sc.output_dir) + "'s shard states");
  uint64_t n = 0;
  EDGEBED_RETURN_IF_ERROR(r.U64(&n));
  if (n != gnn->shards())
    return Status::InvalidArgument(CheckpointPath(sc.output_dir) + " holds " + std::to_string(n) + " shard states; the run has " +
                                   std::to_string(gnn->shards()) + " shards");
  resume_states.assign(n, "");
  for (auto& s : resume_states) EDGEBED_RETURN_IF_ERROR(r.Bytes(&s));
  first_round = ck->round + 1;
  spdlog::info("resuming GNN run {} after epoch {} of {} (from {})", run_id, ck->round, sc.gnn.epochs,
               CheckpointPath(sc.output_dir));
  return Status::Ok();
}

bool GnnServer::SaveShardStates(uint32_t epoch) {
  const auto states = gnn->TakeStates();
  StateWriter w;
  w.U64(states.size());
  for (const auto& s : states) w.Bytes(s);
  ServerCheckpoint ck = NewCheckpoint(epoch);
  ck.state = w.Take();
  return WriteCheckpoint(ck);
}

Status GnnServer::Run() {
  EDGEBED_RETURN_IF_ERROR(PrepareOutput());
  EDGEBED_RETURN_IF_ERROR(gnn->Open(first_round - 1));
  const auto run_start = Clock::now();
  WaitForNodes();  // a shard is ready once it has built its graph and listens for its peers
  std::string stopped;
  uint32_t done = first_round - 1;
  if (!setup_failure.empty()) {
    stopped = "setup: " + setup_failure;
  } else if (stopping()) {
    stopped = "stopped by a signal (SIGINT/SIGTERM) while waiting for the shards";
  } else if (!gnn->AllReady()) {
    stopped = std::to_string(registry.ready_count()) + " of " + std::to_string(gnn->shards()) +
              " shards were ready within server.join_timeout_s = " + std::to_string(sc.join_timeout_s) +
              " s (see the node logs); every shard is needed";
  } else {
    wire::Envelope start;
    gnn->MakeStart(start.mutable_gnn_start());
    if (const AllowList* allow = net.allow()) {  // CURVE: each shard learns every shard's key, by index
      std::vector<std::string> keys(gnn->shards());
      for (const auto& id : registry.AliveIds()) {
        const NodeRecord* rec = registry.Find(id);
        const AllowEntry* entry = allow->ByLabel(net.UserOf(registry.Route(*rec)));
        if (entry && rec->index < keys.size()) keys[rec->index] = entry->public_key;
      }
      for (const auto& k : keys) start.mutable_gnn_start()->add_peer_keys(k);
    }
    for (const auto& id : registry.AliveIds()) {
      const uint32_t index = registry.Find(id)->index;
      start.mutable_gnn_start()->set_state(index < resume_states.size() ? resume_states[index] : std::string());
      Send(id, start);
    }
    resume_states.clear();
    spdlog::info("gnn: every shard is ready; {} epochs", sc.gnn.epochs);
  }
  for (uint32_t e = first_round; stopped.empty() && e <= sc.gnn.epochs && !stopping(); ++e) {
    const auto t0 = Clock::now();
    rounds.Begin(e);
    for (const auto& id : registry.AliveIds()) {
      wire::Envelope env;
      gnn->MakeEpoch(e, registry.Find(id)->index, env.mutable_gnn_epoch());
      if (Send(id, env) > 0) rounds.Expect(id);
    }
    const size_t asked = rounds.expected();
    if (asked < gnn->shards()) {  // a shard left between epochs: the others would wait for it in vain
      // Its leave (with why) came before its connection closed and may still wait unread: read it first.
      PollOnce(std::chrono::milliseconds(0));
      std::string why;
      for (uint32_t i = 0; i < gnn->shards(); ++i) {
        const NodeRecord* rec = registry.ByIndex(i);
        if (rec && rec->alive) continue;
        why += (why.empty() ? "" : "; ") + (rec ? rec->id : "index " + std::to_string(i)) + " (" + (sc.gnn.mode == "pipe" ? "stage " : sc.gnn.mode == "graph" ? "partition " : "shard ") +
               std::to_string(i) + ") " + (rec && !registry.GoneReason(*rec).empty() ? registry.GoneReason(*rec) : std::string("is gone"));
      }
      rounds.Abandon();
      stopped = "epoch " + std::to_string(e) + ": " + (why.empty() ? "a shard could not be sent its epoch" : why);
      break;
    }
    AwaitPending(rounds.DeadlineFrom(t0), /*first_failure=*/true);
    if (!rounds.failures().empty() || rounds.accepted() < gnn->shards() || asked < gnn->shards()) {
      std::string why;
      for (const auto& f : rounds.failures()) {
        const auto* rec = registry.Find(f.node_id);
        why += (why.empty() ? "" : "; ") + f.node_id + " (" + (sc.gnn.mode == "pipe" ? "stage " : sc.gnn.mode == "graph" ? "partition " : "shard ") +
               std::to_string(rec ? rec->index : 0) + ") " + f.reason;
      }
      if (why.empty()) why = std::to_string(rounds.accepted()) + " of " + std::to_string(gnn->shards()) + " shards reported";
      stopped = "epoch " + std::to_string(e) + ": " + why;
      break;
    }
    auto ended = gnn->EndEpoch(e, Since(t0));
    if (!ended.ok()) {
      stopped = "results could not be written: " + ended.status().message();
      break;
    }
    const json row = std::move(ended).value();
    done = e;
    RefreshReport(false);
    if (gnn->CheckpointEpoch(e) && !SaveShardStates(e)) {
      stopped = "results could not be written: " + RecordError().message();
      break;
    }
    if (e == 1 || e % 10 == 0 || e == sc.gnn.epochs)
      spdlog::info("epoch {}/{}: train loss {:.4f}, val {}, test {}, sent {:.1f} KB, {:.3f} s{}", e, sc.gnn.epochs,
                   row["train_loss"].get<double>(), row["val_accuracy"].dump(), row["test_accuracy"].dump(),
                   (row["embedding_bytes"].get<double>() + row["gradient_bytes"].get<double>() +
                    row["parameter_bytes"].get<double>() + row["eval_bytes"].get<double>()) / 1024.0,
                   row["epoch_s"].get<double>(), RunTimeLeft(e, Since(run_start)));
  }
  if (!stopped.empty())
    spdlog::error("GNN training stops: {}. A {} cannot go on without every shard; metrics up to epoch {} are kept in {}",
                  stopped, sc.gnn.mode == "graph" ? "graph-parallel run" : "pipeline", done, sc.output_dir);
  rounds.Abandon();  // the others leave on the shutdown; that is not a failure of theirs
  Shutdown(stopped.empty() ? "run complete" : "run stopped: " + stopped);
  json summary = gnn->Summary();
  summary.update({{"run_id", run_id}, {"model", sc.model}, {"epochs_completed", done}, {"wall_s", Since(run_start)},
                  {"stopped", stopped.empty() ? json(nullptr) : json(stopped)}, {"frames_received", stats.frames}, {"dropped", DroppedJson()},
                  {"resumed_from_epoch", first_round > 1 ? json(first_round - 1) : json(nullptr)}});
  if (stopped.empty() && stopping()) stopped = "stopped by a signal (SIGINT/SIGTERM) after epoch " + std::to_string(done);
  summary["status"] = stopped.empty() ? "complete" : stopping() ? "stopped" : "failed";
  summary["stop_reason"] = stopped.empty() ? json(nullptr) : json(stopped);
  EDGEBED_RETURN_IF_ERROR(WriteSummaryFile(sc.output_dir, summary));
  RefreshReport(/*finished=*/true);
  if (!stopped.empty()) return Status::Unavailable("GNN training stopped at " + stopped);
  spdlog::info("gnn run complete: {} epochs, test accuracy {:.4f} at best validation (epoch {}), {:.1f} s; outputs in {}",
               done, summary["test_accuracy"].get<double>(), summary["best_epoch"].get<uint32_t>(), Since(run_start),
               sc.output_dir);
  return Status::Ok();
}

}  // namespace edgebed
