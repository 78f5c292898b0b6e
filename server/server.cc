// The parameter server: picks the run mode (federated rounds, split learning, GNN epochs) and hands
// it the scenario; everything else lives in the mode and in what the modes share (server_core.h).
#include "server/server.h"

#include "server/federated_server.h"
#include "server/gnn_server.h"
#include "server/split_server.h"
#include "splitnets/learner.h"

namespace edgebed {

struct Server::Impl {
  std::unique_ptr<ServerCore> mode;
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() = default;

Result<std::unique_ptr<Server>> Server::Create(const Scenario& sc) {
  std::unique_ptr<Server> server(new Server(std::make_unique<Impl>()));
  SetTorchThreads(static_cast<int>(sc.server_threads));
  auto mode = sc.is_gnn() ? GnnServer::Create(sc, &server->stop_)
              : sc.is_split() ? SplitServer::Create(sc, &server->stop_)
                              : FederatedServer::Create(sc, &server->stop_);
  if (!mode.ok()) return mode.status();
  server->impl_->mode = std::move(mode.value());
  return server;
}

Result<std::string> Server::Bind(const CurveOptions& curve) { return impl_->mode->Bind(curve); }
Status Server::Resume() { return impl_->mode->Resume(); }
Status Server::Run() { return impl_->mode->Run(); }
const ServerStats& Server::stats() const { return impl_->mode->server_stats(); }
const LinkStats& Server::link_stats() const { return impl_->mode->link_stats(); }
uint64_t Server::closed_connections() const { return impl_->mode->closed_connections(); }
const ParamSet& Server::global() const { return impl_->mode->global_model(); }

}  // namespace edgebed
