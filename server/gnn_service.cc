#include "server/gnn_service.h"

#include <spdlog/spdlog.h>

#include "gnn/gnn_wire.h"

namespace edgebed {

Result<std::unique_ptr<GnnService>> GnnService::Create(const GnnServiceOptions& opt) {
  if (opt.gnn.mode != "pipe" && opt.gnn.mode != "graph" && opt.gnn.mode != "hybrid")
    return Status::InvalidArgument("gnn.mode = '" + opt.gnn.mode + "': the server runs pipe, graph or hybrid (full trains in one process)");
  std::unique_ptr<GnnService> s(new GnnService(opt));
  auto g = LoadGraph(opt.gnn, opt.data_dir);
  if (!g.ok()) return g.status();
  s->graph_ = std::move(g.value());
  auto analytic = AnalyticCounts(s->graph_, opt.gnn);
  if (!analytic.ok()) return analytic.status();
  s->report_ = std::make_unique<GnnReport>(opt.gnn, s->graph_, analytic.value(), opt.output_dir);
  const uint32_t p = opt.gnn.shards();
  s->endpoints_.assign(p, "");
  s->stats_.assign(p, ShardStats{});
  s->traffic_.assign(p, ShardTraffic{});
  spdlog::info("gnn: {}; {} with {} shards{}, {} layers of width {}", s->graph_.description, opt.gnn.mode, p,
               opt.gnn.mode == "pipe" ? " and " + std::to_string(opt.gnn.chunks) + " chunks" : "", opt.gnn.layers,
               opt.gnn.hidden);
  if (opt.gnn.mode == "hybrid")
    spdlog::info("gnn: hybrid: {} stages x {} partitions ({} {}-way halo vertices)", opt.gnn.parts, opt.gnn.partitions,
                 analytic->hybrid_halo, opt.gnn.partitions);
  if (opt.gnn.mode == "graph")
    spdlog::info("gnn: the {}-way {} partition cuts {} edges; halo {} vertices", p, opt.gnn.partitioner,
                 analytic->edge_cut, analytic->halo);
  return s;
}

Status GnnService::Open(uint32_t resumed_after) {
  return resumed_after > 0 ? report_->Reopen(resumed_after) : report_->Open();
}

bool GnnService::CheckpointEpoch(uint32_t epoch) const {
  return opt_.gnn.checkpoint_every > 0 && epoch % opt_.gnn.checkpoint_every == 0 && epoch < opt_.gnn.epochs;
}

std::vector<std::string> GnnService::TakeStates() {
  std::vector<std::string> out = std::move(states_);
  states_.assign(stats_.size(), "");
  return out;
}

void GnnService::FillJoinAck(uint32_t index, wire::JoinAck* ack) const {
  ToWire(opt_.gnn, index, ack->mutable_gnn());
  ack->mutable_gnn()->set_data_dir(opt_.data_dir);
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
  out->set_evaluate(epoch % opt_.gnn.eval_every == 0 || epoch == opt_.gnn.epochs);
  for (const auto& c : opt_.crashes)
    if (c.shard == index && c.epoch == epoch) out->set_crash_mid_epoch(true);
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
