// GNN training as a run mode (model gnn; private to server/): the shards train among themselves
// peer to peer; the server hands out shards, starts them and orders epochs (gnn_service.h).
#pragma once
#include <memory>
#include <string>

#include "server/gnn_service.h"
#include "server/mode_options.h"
#include "server/server_core.h"

namespace edgebed {

class GnnServer final : public ServerCore {
 public:
  [[nodiscard]] static Result<std::unique_ptr<ServerCore>> Create(const Scenario& sc, std::atomic<bool>* stop);
  Status Run() override;
  // Continues from output_dir's checkpoint: the epoch, every shard's state (sent in gnn_start).
  Status Resume() override;
  const char* mode_name() const override { return "GNN run (model gnn)"; }

 private:
  GnnServer(const Scenario& scenario, std::atomic<bool>* stop) : ServerCore(CoreOptions(scenario), stop), sc(scenario) {}
  bool OnModeMessage(const std::string& from, const wire::Envelope& env, const wire::FrameViews&) override;
  void FillJoinAck(uint32_t index, wire::JoinAck* ack) override;
  void OnNodeError(const std::string& from, const wire::Error& e) override;
  void OnGnnReady(const std::string& from, const wire::GnnReady& r);
  void OnGnnEpochDone(const std::string& from, const wire::GnnEpochDone& d);

  // After a checkpoint epoch: the shards' states into checkpoint.bin; false (the run stops) on failure.
  bool SaveShardStates(uint32_t epoch);

  std::unique_ptr<GnnService> gnn;
  std::vector<std::string> resume_states;  // by shard index, from the checkpoint
  const Scenario sc;  // this mode maps it to its pieces' options (mode_options.h)
};

}  // namespace edgebed
