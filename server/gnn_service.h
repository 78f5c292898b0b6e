// The server's side of GNN training (model.name = "gnn", gnn.mode pipe or graph): it hands each
// node its shard, collects the shards' endpoints and tells everyone where the others are, then
// orders the epochs and combines the shards' reports (gnn/gnn_report.h) into metrics and the
// summary. The shards exchange embeddings and gradients among themselves; the server carries none.
// The transport (ROUTER socket, joins, liveness) is the parameter server's (server.cc); this class
// only sees messages, so a test can drive it directly.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "codecs/edgebed.pb.h"
#include "gnn/gnn_report.h"
#include "gnn/gnn_config.h"

namespace edgebed {

struct GnnServiceOptions {
  GnnConfig gnn;           // [gnn]: layout, model, epochs, checkpoints
  std::string data_dir;    // where the shards (and the server, for the analytic counts) read the graph
  std::string output_dir;  // metrics files
  struct Crash {
    uint32_t shard = 0, epoch = 1;  // fault injection: this shard's process dies half way through this epoch
  };
  std::vector<Crash> crashes;
};

class GnnService {
 public:
  // Builds the graph too (for the analytic traffic counts and the description).
  static Result<std::unique_ptr<GnnService>> Create(const GnnServiceOptions& opt);
  // Metrics files in the output folder: new, or (resumed) cut after epoch `resumed_after`.
  [[nodiscard]] Status Open(uint32_t resumed_after = 0);

  uint32_t shards() const { return opt_.gnn.shards(); }
  void FillJoinAck(uint32_t index, wire::JoinAck* ack) const;
  // Shard `index` is built and listens on r.endpoint.
  Status OnReady(uint32_t index, const wire::GnnReady& r);
  bool AllReady() const;
  void MakeStart(wire::GnnStart* out) const;
  void MakeEpoch(uint32_t epoch, uint32_t index, wire::GnnEpoch* out) const;
  // Shard `index`'s report for the epoch in progress (checked: epoch, field sizes, and on a checkpoint
  // epoch that it carries the shard's state).
  Status OnEpochDone(uint32_t index, uint32_t epoch, const wire::GnnEpochDone& d);
  bool CheckpointEpoch(uint32_t epoch) const;
  // After a checkpoint epoch: every shard's state, by index (taken: the service keeps none).
  std::vector<std::string> TakeStates();
  // Every shard has reported: combines them into the epoch's metrics row (returned).
  [[nodiscard]] Result<nlohmann::json> EndEpoch(uint32_t epoch, double wall_s);  // errors name the metrics file
  nlohmann::json Summary() const { return report_->Summary(); }

 private:
  explicit GnnService(const GnnServiceOptions& opt) : opt_(opt) {}
  GnnServiceOptions opt_;
  Graph graph_;
  std::unique_ptr<GnnReport> report_;
  std::vector<std::string> endpoints_;
  std::vector<ShardStats> stats_;
  std::vector<ShardTraffic> traffic_;
  std::vector<std::string> states_;
};

}  // namespace edgebed
