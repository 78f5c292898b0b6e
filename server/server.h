// The parameter server: binds a ZeroMQ ROUTER socket, admits nodes, and runs the rounds
// (configure -> fit -> aggregate -> evaluate) with a deadline, a quorum and liveness checks.
// Anything malformed that arrives is logged, answered with an Error where possible, counted, and
// dropped; the server keeps serving.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "codecs/params.h"
#include "codecs/status.h"
#include "scenarios/scenario.h"
#include "server/node_link.h"

namespace edgebed {

// What the server dropped, by cause; tests and summary.json read it.
struct ServerStats {
  uint64_t frames = 0;            // frames received
  uint64_t malformed = 0;         // not an Envelope, empty, or more than 8 attached frames
  uint64_t oversize = 0;          // over server.max_frame_mb
  uint64_t bad_version = 0;
  uint64_t bad_tensor = 0;        // wrong name/shape/dtype/size or non-finite values
  uint64_t unexpected = 0;        // valid message, wrong time or sender
  uint64_t unknown_node = 0;      // sender never joined
  uint64_t rejected_joins = 0;
  uint64_t capped_samples = 0;    // updates claiming more samples than the node's partition holds
};

class Server {
 public:
  [[nodiscard]] static Result<std::unique_ptr<Server>> Create(const Scenario& scenario);
  ~Server();
  // Binds server.bind (port 0 = any free port); returns the endpoint nodes connect to. With keys
  // (curve.own) every link is CURVE and only allow-listed keys get in, each as the node names it is
  // bound to; without keys a non-loopback address is refused unless curve.insecure.
  Result<std::string> Bind(const CurveOptions& curve = {});
  // Continues the run in output_dir from its checkpoint (the last complete round; a GNN run's last
  // checkpoint epoch): the mode's state (federated: global model, strategy, selection generator,
  // virtual clock; split: decoder and encoders; GNN: every shard's state); metrics rows after it are
  // dropped. Call before Run. Errors name the file and what does not match.
  [[nodiscard]] Status Resume();
  // Runs every round and writes metrics.jsonl, metrics.csv, summary.json and final_model.pt into
  // the output folder, checking every write. Returns OK only for a complete run; a run that was
  // stopped, lost all its nodes, aggregated no round or could not write its results returns an
  // error saying so (summary.json's "status" and "stop_reason" say the same).
  [[nodiscard]] Status Run();
  // Asks Run() to stop after the current round (from a signal handler or another thread).
  void RequestStop() { stop_ = true; }
  const ServerStats& stats() const;
  // Connections: refused over the limits, failed handshakes, open now.
  const LinkStats& link_stats() const;
  // Connections whose close the server has handled (their nodes released); safe from any thread,
  // so a test can wait for the server to have seen a disconnect instead of sleeping.
  uint64_t closed_connections() const;
  const ParamSet& global() const;

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> stop_{false};
};

}  // namespace edgebed
