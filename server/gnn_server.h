// GNN training as a run mode (model gnn; private to server/): the shards train among themselves
// peer to peer; the server hands out shards, starts them and orders epochs (gnn_service.h).
#pragma once
#include <memory>
#include <string>

#include "server/gnn_service.h"
#include "server/server_core.h"

namespace edgebed {

class GnnServer final : public ServerCore {
 public:
  [[nodiscard]] static Result<std::unique_ptr<ServerCore>> Create(const Scenario& sc, std::atomic<bool>* stop);
  Status Run() override;
  const char* mode_name() const override { return "GNN run (model gnn)"; }

 private:
  GnnServer(const Scenario& sc, std::atomic<bool>* stop) : ServerCore(sc, stop) {}
  bool OnModeMessage(const std::string& from, const wire::Envelope& env) override;
  void FillJoinAck(uint32_t index, wire::JoinAck* ack) override;
  void OnNodeError(const std::string& from, const wire::Error& e) override;
  void OnGnnReady(const std::string& from, const wire::GnnReady& r);
  void OnGnnEpochDone(const std::string& from, const wire::GnnEpochDone& d);

  std::unique_ptr<GnnService> gnn;
};

}  // namespace edgebed
