#include "server/registry.h"

#include <algorithm>

namespace edgebed {

Status NodeRegistry::Join(const std::string& id, const std::string& route, uint32_t index,
                          std::chrono::steady_clock::time_point now) {
  if (id.empty() || id.size() > 128) return Status::InvalidArgument("join.node_id must be 1..128 characters");
  for (char c : id)
    if (c < 0x21 || c > 0x7e)  // ids go into logs, file names and metrics: printable ASCII only
      return Status::InvalidArgument("join.node_id may hold printable ASCII characters only (no spaces or control characters)");
  if (const NodeRecord* held = Find(id); held && held->alive && held->route != route)
    return Status::InvalidArgument("join.node_id '" + id + "' is held by another connection; a node joins again only "
                                   "after its connection closes, it leaves, or it is declared failed");
  if (index >= num_nodes_)
    return Status::InvalidArgument("join.node_index = " + std::to_string(index) + " is out of range [0, " +
                                   std::to_string(num_nodes_ - 1) + "]");
  if (holder_[index] && holder_[index]->id != id)
    return Status::InvalidArgument("join.node_index = " + std::to_string(index) + " is already held by " + holder_[index]->id);
  NodeRecord& rec = nodes_[id];
  SetAlive(rec, false);  // a node joining again over its own connection starts over
  rec.id = id;
  rec.route = route;
  rec.index = index;
  rec.ready = false;
  SetAlive(rec, true);
  rec.last_seen = now;
  rec.gone_reason.clear();
  return Status::Ok();
}

const std::shared_ptr<const DeviceProfile>& MeasuredProfile() {
  static const std::shared_ptr<const DeviceProfile> measured = std::make_shared<const DeviceProfile>();
  return measured;
}

namespace {
bool SameProfile(const DeviceProfile& a, const DeviceProfile& b) {
  return a.name == b.name && a.train_gflops == b.train_gflops && a.memory_mb == b.memory_mb &&
         a.uplink_bps == b.uplink_bps && a.downlink_bps == b.downlink_bps && a.tx_power_w == b.tx_power_w &&
         a.compute_power_w == b.compute_power_w && a.ms_per_sample == b.ms_per_sample;
}
}  // namespace

void NodeRegistry::SetProfile(NodeRecord& rec, const DeviceProfile& profile) {
  for (const auto& p : recent_profiles_)
    if (SameProfile(*p, profile)) {
      rec.profile = p;
      return;
    }
  if (recent_profiles_.size() >= 16) recent_profiles_.erase(recent_profiles_.begin());
  recent_profiles_.push_back(std::make_shared<const DeviceProfile>(profile));
  rec.profile = recent_profiles_.back();
}

NodeRecord* NodeRegistry::Find(const std::string& id) {
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : &it->second;
}

const NodeRecord* NodeRegistry::Find(const std::string& id) const {
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : &it->second;
}

void NodeRegistry::Touch(const std::string& id, std::chrono::steady_clock::time_point now) {
  if (auto* r = Find(id)) r->last_seen = now;
}

void NodeRegistry::SetAlive(NodeRecord& rec, bool alive) {
  if (rec.alive == alive) return;
  rec.alive = alive;
  if (alive) {
    ++alive_;
    ready_ += rec.ready;
    holder_[rec.index] = &rec;
  } else {
    --alive_;
    ready_ -= rec.ready;
    if (holder_[rec.index] == &rec) holder_[rec.index] = nullptr;
  }
}

void NodeRegistry::MarkGone(const std::string& id) {
  if (auto* r = Find(id)) SetAlive(*r, false);
}

void NodeRegistry::MarkReady(const std::string& id) {
  auto* r = Find(id);
  if (!r || r->ready) return;
  r->ready = true;
  ready_ += r->alive;
}

const NodeRecord* NodeRegistry::ByIndex(uint32_t index) const {
  if (index < holder_.size() && holder_[index]) return holder_[index];
  const NodeRecord* last = nullptr;
  for (const auto& [id, rec] : nodes_) {
    if (rec.index != index) continue;
    if (rec.alive) return &rec;
    if (!last || rec.last_seen > last->last_seen) last = &rec;
  }
  return last;
}

std::chrono::steady_clock::time_point NodeRegistry::LastHeard(const NodeRecord& rec) const {
  auto it = route_seen_.find(rec.route);
  return it == route_seen_.end() ? rec.last_seen : std::max(rec.last_seen, it->second);
}

std::vector<std::string> NodeRegistry::ReleaseRoute(const std::string& route) {
  route_seen_.erase(route);
  std::vector<std::string> gone;
  for (auto& [id, rec] : nodes_)
    if (rec.alive && rec.route == route) {
      SetAlive(rec, false);
      gone.push_back(id);
    }
  return gone;
}

std::vector<std::string> NodeRegistry::AliveIds() const {
  std::vector<std::string> ids;
  ids.reserve(alive_);
  for (const auto& [id, rec] : nodes_)
    if (rec.alive) ids.push_back(id);
  return ids;
}

size_t NodeRegistry::alive_count() const { return alive_; }

}  // namespace edgebed

namespace edgebed {
size_t NodeRegistry::ready_count() const { return ready_; }
}  // namespace edgebed
