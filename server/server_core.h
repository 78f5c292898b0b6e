// What every run mode of the server shares (private to server/): the node link, the registry, the
// round in progress (pending nodes, failures, deadline, liveness), joins, heartbeats and leaves, the
// message switch, the run record and how a run ends. A run mode (federated rounds, split learning,
// GNN epochs) derives from it and adds its own messages, its join_ack fields and its Run().
#pragma once
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "codecs/status.h"
#include "codecs/wire.h"
#include "record/run_record.h"
#include "server/checkpoint.h"
#include "server/node_link.h"
#include "server/registry.h"
#include "server/round_tracker.h"
#include "server/server.h"
#include "server/strategy.h"

namespace edgebed {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

double Since(Clock::time_point t);

// Puts a round's failed jobs ({node, reason} objects) into its row: `failures` and `failed_nodes`
// for nodes that failed (crashed, silent, refused, training failed), `dropouts` and `offline_nodes`
// for devices that answered UNAVAILABLE (offline when selected), which are not failures.
void PutFailures(const json& failed, json* row);

// What the core needs of a run; a mode fills it from its scenario (mode_options.h).
struct ServerCoreOptions {
  std::string run_name;           // "<name>-<seed>": the run id starts with it (UniqueRunId)
  uint64_t seed = 1;
  std::string output_dir;
  std::string resolved_scenario;  // written to <output_dir>/scenario.toml
  NodeLinkOptions link;           // without keys: Bind adds them
  RoundTrackerOptions rounds;
  uint32_t nodes = 1;             // joins awaited before the first round
  uint32_t last_round = 1;        // RunRounds runs up to this (the run's rounds or epochs)
  std::string round_name = "round";  // what the log calls one: round, epoch (GNN) or step (FedBuff)
  double join_timeout_s = 300.0;
  wire::JoinAck join_ack;         // what every accepted node is told: model, data set, partition, seed
};

class ServerCore : public NodeLink::Handler {
 public:
  ServerCore(ServerCoreOptions options, std::atomic<bool>* stop_flag);
  ~ServerCore() override = default;
  ServerCore(const ServerCore&) = delete;
  ServerCore& operator=(const ServerCore&) = delete;

  // ---- what a run mode is ----------------------------------------------------------------------
  // Runs the mode after Bind: waits for joins, runs rounds or epochs, writes its results.
  [[nodiscard]] virtual Status Run() = 0;
  // Continues from output_dir's checkpoint: the last complete round (GNN: checkpoint epoch).
  [[nodiscard]] virtual Status Resume() = 0;
  // "federated run", "split-learning run (model slimsplit)", ...: for messages of another mode.
  virtual const char* mode_name() const = 0;

  Result<std::string> Bind(const CurveOptions& curve = {});
  const ServerStats& server_stats() const { return stats; }
  const LinkStats& link_stats() const { return net.stats(); }
  uint64_t closed_connections() const { return closed_connections_.load(); }
  virtual const ParamSet& global_model() const;

 protected:
  // A message of this mode (fit_res, split_forward, gnn_ready, ...) from joined-or-not node `from`;
  // false when the mode takes no such message (the core then answers UNEXPECTED). `attached`: the
  // frames after the Envelope frame that its tensors may name (checked against the size limit).
  virtual bool OnModeMessage(const std::string& from, const wire::Envelope& env, const wire::FrameViews& attached) = 0;
  // The mode's fields of a join_ack (the node's shard, the split network, ...).
  virtual void FillJoinAck(uint32_t index, wire::JoinAck* ack) {}
  // A node reports an error (e.g. UNAVAILABLE for this round, REJECTED for its GNN shard).
  virtual void OnNodeError(const std::string& from, const wire::Error& e);

  // ---- sending -------------------------------------------------------------------------------
  // Sends to node `to` over the connection that carries it (its own, or its node host's).
  size_t Send(const std::string& to, wire::Envelope& env, const std::string& route = "");
  void SendError(const std::string& to, wire::ErrorCode code, const std::string& msg);

  // ---- the round in progress (round_tracker.h) --------------------------------------------------
  // `id` failed this round (nothing when it owed nothing): recorded, counted on its record, logged.
  void Fail(const std::string& id, const std::string& reason);
  // `id` is gone (it left, its connection closed, it fell silent): no longer alive, the reason kept on
  // its record (a mode that needs every node names it even when it owed nothing), and failed if pending.
  void Gone(const std::string& id, const std::string& reason);
  // Waits for every node the round expects, until `deadline`, failing those silent for longer than
  // the liveness timeout and, at the end, those still expected. `first_failure`: return as soon as
  // one node has failed (GNN shards need each other).
  void AwaitPending(Clock::time_point deadline, bool first_failure = false);
  // Called after every poll of AwaitPending; returns how long the next poll may wait for a message
  // (split learning answers its queued batches here).
  virtual std::chrono::milliseconds AfterPoll() { return std::chrono::milliseconds(200); }
  // Nodes owing an answer and not heard from (nor their connection) for the liveness timeout: gone, failed.
  void FailSilentNodes();
  void PollOnce(std::chrono::milliseconds timeout) { net.Poll(timeout, *this); }
  bool KnownAlive(const std::string& from, const char* what);

  // ---- the run ---------------------------------------------------------------------------------
  // Binds if not yet bound, makes output_dir and writes the resolved scenario.toml into it.
  [[nodiscard]] Status PrepareOutput();
  // Until every node has joined and prepared its data, the join timeout, a setup failure or a stop.
  void WaitForNodes();
  // WaitForNodes, then an error when stopped or when no node joined; a warning when some did not.
  [[nodiscard]] Status AwaitJoins();
  // Rounds first_round..rounds until a stop, a failed result write, or no node alive; returns the
  // last round run. An early end leaves its reason in stop_reason.
  uint32_t RunRounds(const std::function<void(uint32_t)>& run_round);
  void Shutdown(const std::string& reason = "run complete");
  // summary.json's status (complete, stopped, failed), stop_reason, rounds_aggregated.
  json Outcome(uint32_t done, uint64_t aggregated_rounds) const;
  json DroppedJson() const;
  Status KeyPermits(const std::string& route, const std::string& node_id) const;
  // ---- checkpoints (checkpoint.h) ---------------------------------------------------------------
  // A checkpoint of this run after `round`, for the mode to fill with its state.
  ServerCheckpoint NewCheckpoint(uint32_t round) const;
  // Writes it atomically; false (and the run stops after this round) when it cannot.
  bool WriteCheckpoint(const ServerCheckpoint& ck);
  // The checkpoint of this run's name and seed; the run takes on its run id (nodes rejoin by it).
  [[nodiscard]] Result<ServerCheckpoint> ReadCheckpoint();

  // A result file could not be written: the run stops after this round; the error names the file.
  void RecordFailed(const Status& st);
  Status RecordError();
  bool WriteRow(const json& row);
  // A node's share of its work in `round` done (a heartbeat, a split step): kept for the progress
  // line when `round` is the round in progress and 0 <= share <= 1; anything else is ignored.
  void NoteProgress(const std::string& id, uint32_t round, float share);
  // "round 3/20: 6/10 answered, 4 training at 12-85% (median 40%), ~12 s left": logged every
  // 10 s while a round waits for its answers.
  std::string RoundProgressLine(double round_elapsed_s) const;
  // "; ~3 min 10 s left" for the run after round `r`, from the time its rounds have taken so far.
  std::string RunTimeLeft(uint32_t r, double elapsed_s) const;
  // Rewrites report.html (record/report.h): after a row at most every few seconds (so an
  // interrupted run has one), and always once the summary is written (`finished`). A report that
  // cannot be written is a warning naming the file; the run goes on.
  void RefreshReport(bool finished);
  // The round tracker's failures as {node, reason} objects, for PutFailures.
  json RoundFailures() const;
  bool stopping() const { return stop_flag->load(); }

  const ServerCoreOptions core;
  std::atomic<bool>* stop_flag;
  std::string run_id;  // unique per run (UniqueRunId); a resumed run keeps its checkpoint's
  NodeLink net;
  NodeRegistry registry;
  ServerStats stats;
  RunRecord record;
  uint32_t first_round = 1;   // > 1 when resumed from a checkpoint
  std::string stop_reason;    // why the run ended early ("" = it did not)
  std::string setup_failure;  // a node that could not set up (GNN shard): the run cannot start

  RoundTracker rounds;  // the round in progress, shared by every mode
  uint64_t uplink_bytes = 0, downlink_bytes = 0;  // update uploads (fit_res frames) / everything sent
  uint64_t control_bytes = 0;                       // other frames from participants (heartbeats, ...)

 private:
  void OnRouteClosed(const std::string& route) override;
  void OnMessage(const std::string& route, std::vector<zmq::message_t>& parts) override;
  void OnJoin(const std::string& from, const std::string& route, const wire::Join& j);
  void OnHeartbeat(const std::string& from, const wire::Heartbeat& hb);
  void OnLeave(const std::string& from, const wire::Leave& l);

  std::atomic<uint64_t> closed_connections_{0};  // routes whose close was handled (read by other threads)
  std::mutex record_mu_;
  Status record_error_;  // the first failed write of a result file
  std::mutex report_mu_;
  Clock::time_point report_at_{};
  std::string report_warning_;  // the last one logged, not repeated each round
};

}  // namespace edgebed
