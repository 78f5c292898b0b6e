#include "server/gnn_service.h"

#include <spdlog/spdlog.h>

#include "gnn/gnn_wire.h"

namespace edgebed {

Result<std::unique_ptr<GnnService>> GnnService::Create(const Scenario& sc) {
  if (sc.gnn.mode != "pipe" && sc.gnn.mode != "graph" && sc.gnn.mode != "hybrid")
    return Status::InvalidArgument("gnn.mode = '" + sc.gnn.mode + "': the server runs pipe, graph or hybrid (full trains in one process)");
  std::unique_ptr<GnnService> s(new GnnService(sc));
  auto g = LoadGraph(sc.gnn, sc.data.dir);
  if (!g.ok()) return g.status();
  s->graph_ = std::move(g.value());
  auto analytic = AnalyticCounts(s->graph_, sc.gnn);
  if (!analytic.ok()) return analytic.status();
  s->report_ = std::make_unique<GnnReport>(sc.gnn, s->graph_, analytic.value(), sc.output_dir);
  const uint32_t p = sc.gnn.shards();
  s->endpoints_.assign(p, "");
  s->stats_.assign(p, ShardStats{});
  s->traffic_.assign(p, ShardTraffic{});
  spdlog::info("gnn: {}; {} with {} shards{}, {} layers of width {}", s->graph_.description, sc.gnn.mode, p,
               sc.gnn.mode == "pipe" ? " and " + std::to_string(sc.gnn.chunks) + " chunks" : "", sc.gnn.layers,
               sc.gnn.hidden);
  if (sc.gnn.mode == "hybrid")
    spdlog::info("gnn: hybrid: {} stages x {} partitions ({} {}-way halo vertices)", sc.gnn.parts, sc.gnn.partitions,
                 analytic->hybrid_halo, sc.gnn.partitions);
  if (sc.gnn.mode == "graph")
    spdlog::info("gnn: the {}-way {} partition cuts {} edges; halo {} vertices", p, sc.gnn.partitioner,
                 analytic->edge_cut, analytic->halo);
  return s;
}

Status GnnService::Open(uint32_t resumed_after) {
  return resumed_after > 0 ? report_->Reopen(resumed_after) : report_->Open();
}

bool GnnService::CheckpointEpoch(uint32_t epoch) const {
  return sc_.gnn.checkpoint_every > 0 && epoch % sc_.gnn.checkpoint_every == 0 && epoch < sc_.gnn.epochs;
}

std::vector<std::string> GnnService::TakeStates() {
  std::vector<std::string> out = std::move(states_);
  states_.assign(stats_.size(), "");
  return out;
}

void GnnService::FillJoinAck(uint32_t index, wire::JoinAck* ack) const {
  ToWire(sc_.gnn, index, ack->mutable_gnn());
  ack->mutable_gnn()->set_data_dir(sc_.data.dir);
}

Status GnnService::OnReady(uint32_t index, const wire::GnnReady& r) {
  if (index >= endpoints_.size())
    return Status::InvalidArgument("gnn_ready from node index " + std::to_string(index) + ": shards are 0.." +
                                   std::to_string(endpoints_.size() - 1));
  if (r.endpoint().empty()) return Status::InvalidArgument("gnn_ready.endpoint is empty");
  endpoints_[index] = r.endpoint();
  spdlog::info("gnn shard {} ready on {}: {} ({} parameters)", index, r.endpoint(), r.describe(), r.parameters());
  return Status::Ok();
}

bool GnnService::AllReady() const {
  for (const auto& e : endpoints_)
    if (e.empty()) return false;
  return true;
}

void GnnService::MakeStart(wire::GnnStart* out) const {
  for (const auto& e : endpoints_) out->add_peers(e);
}

void GnnService::MakeEpoch(uint32_t epoch, uint32_t index, wire::GnnEpoch* out) const {
  out->set_epoch(epoch);
  out->set_evaluate(epoch % sc_.gnn.eval_every == 0 || epoch == sc_.gnn.epochs);
  for (const auto& c : sc_.crashes)
    if (c.node == index && c.round == epoch) out->set_crash_mid_epoch(true);
  out->set_checkpoint(CheckpointEpoch(epoch));
}

Status GnnService::OnEpochDone(uint32_t index, uint32_t epoch, const wire::GnnEpochDone& d) {
  if (index >= stats_.size()) return Status::InvalidArgument("gnn_epoch_done from a node that holds no shard");
  if (d.epoch() != epoch)
    return Status::InvalidArgument("gnn_epoch_done.epoch = " + std::to_string(d.epoch()) + " is not the epoch in progress (" +
                                   std::to_string(epoch) + ")");
  if (CheckpointEpoch(epoch) && d.state().empty())
    return Status::InvalidArgument("gnn_epoch_done.state is empty on checkpoint epoch " + std::to_string(epoch));
  EDGEBED_RETURN_IF_ERROR(FromWire(d, &stats_[index], &traffic_[index]));
  if (states_.size() != stats_.size()) states_.assign(stats_.size(), "");
  states_[index] = d.state();
  return Status::Ok();
}

Result<nlohmann::json> GnnService::EndEpoch(uint32_t epoch, double wall_s) {
  Status st = report_->AddEpoch(epoch, stats_, traffic_, wall_s);
  std::fill(stats_.begin(), stats_.end(), ShardStats{});
  std::fill(traffic_.begin(), traffic_.end(), ShardTraffic{});
  if (!st.ok()) return st;
  return report_->rows().back();
}

}  // namespace edgebed
