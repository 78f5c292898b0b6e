#include "server/registry.h"

#include <algorithm>
#include <functional>

namespace edgebed {

NodeRegistry::NodeRegistry(uint32_t num_nodes) : num_nodes_(num_nodes), by_id_(64, 0), holder_(num_nodes, kNone) {}

Status NodeRegistry::Join(const std::string& id, const std::string& route, uint32_t index,
                          std::chrono::steady_clock::time_point now) {
  if (id.empty() || id.size() > 128) return Status::InvalidArgument("join.node_id must be 1..128 characters");
  for (char c : id)
    if (c < 0x21 || c > 0x7e)  // ids go into logs, file names and metrics: printable ASCII only
      return Status::InvalidArgument("join.node_id may hold printable ASCII characters only (no spaces or control characters)");
  uint32_t pos = Position(id);
  if (pos != kNone && records_[pos].alive && Route(records_[pos]) != route)
    return Status::InvalidArgument("join.node_id '" + id + "' is held by another connection; a node joins again only "
                                   "after its connection closes, it leaves, or it is declared failed");
  if (index >= num_nodes_)
    return Status::InvalidArgument("join.node_index = " + std::to_string(index) + " is out of range [0, " +
                                   std::to_string(num_nodes_ - 1) + "]");
  if (holder_[index] != kNone && holder_[index] != pos)
    return Status::InvalidArgument("join.node_index = " + std::to_string(index) + " is already held by " +
                                   records_[holder_[index]].id);
  if (pos == kNone) {
    pos = static_cast<uint32_t>(records_.size());
    NodeRecord& rec = records_.emplace_back();
    rec.id = id;
    rec.route = routes_.Hold(route);
    rec.profile = profiles_.Hold(DeviceProfile{});
    Insert(pos);
  }
  NodeRecord& rec = records_[pos];
  SetAlive(rec, false);  // a node joining again over its own connection starts over
  rec.route = routes_.Replace(rec.route, route);
  rec.index = index;
  rec.ready = false;
  SetAlive(rec, true);
  rec.last_seen = now;
  gone_reason_.erase(pos);
  return Status::Ok();
}

uint32_t NodeRegistry::Position(std::string_view id) const {
  const size_t mask = by_id_.size() - 1;
  for (size_t s = std::hash<std::string_view>{}(id) & mask;; s = (s + 1) & mask) {
    if (by_id_[s] == 0) return kNone;
    if (records_[by_id_[s] - 1].id == id) return by_id_[s] - 1;
  }
}

void NodeRegistry::Insert(uint32_t position) {
  if (2 * (records_.size() + 1) > by_id_.size()) {  // keep it at most half full: short probes
    by_id_.assign(by_id_.size() * 2, 0);
    for (uint32_t p = 0; p < records_.size(); ++p)
      if (p != position) Insert(p);
  }
  const size_t mask = by_id_.size() - 1;
  size_t s = std::hash<std::string_view>{}(records_[position].id) & mask;
  while (by_id_[s] != 0) s = (s + 1) & mask;
  by_id_[s] = position + 1;
}

void NodeRegistry::SetProfile(NodeRecord& rec, const DeviceProfile& profile) {
  rec.profile = profiles_.Replace(rec.profile, profile);
}

NodeRecord* NodeRegistry::Find(std::string_view id) {
  const uint32_t p = Position(id);
  return p == kNone ? nullptr : &records_[p];
}

const NodeRecord* NodeRegistry::Find(std::string_view id) const {
  const uint32_t p = Position(id);
  return p == kNone ? nullptr : &records_[p];
}

void NodeRegistry::Touch(const std::string& id, std::chrono::steady_clock::time_point now) {
  if (auto* r = Find(id)) r->last_seen = now;
}

void NodeRegistry::SetAlive(NodeRecord& rec, bool alive) {
  if (rec.alive == alive) return;
  rec.alive = alive;
  const uint32_t pos = Position(rec.id);
  if (alive) {
    ++alive_;
    ready_ += rec.ready;
    holder_[rec.index] = pos;
  } else {
    --alive_;
    ready_ -= rec.ready;
    if (holder_[rec.index] == pos) holder_[rec.index] = kNone;
  }
}

void NodeRegistry::MarkGone(const std::string& id, const std::string& reason) {
  const uint32_t p = Position(id);
  if (p == kNone) return;
  SetAlive(records_[p], false);
  if (!reason.empty()) gone_reason_[p] = reason;
}

const std::string& NodeRegistry::GoneReason(const NodeRecord& rec) const {
  static const std::string none;
  if (rec.alive) return none;
  auto it = gone_reason_.find(Position(rec.id));
  return it == gone_reason_.end() ? none : it->second;
}

void NodeRegistry::MarkReady(const std::string& id) {
  auto* r = Find(id);
  if (!r || r->ready) return;
  r->ready = true;
  ready_ += r->alive;
}

const NodeRecord* NodeRegistry::ByIndex(uint32_t index) const {
  if (index < holder_.size() && holder_[index] != kNone) return &records_[holder_[index]];
  const NodeRecord* last = nullptr;
  for (const NodeRecord& rec : records_) {
    if (rec.index != index) continue;
    if (!last || rec.last_seen > last->last_seen) last = &rec;
  }
  return last;
}

std::chrono::steady_clock::time_point NodeRegistry::LastHeard(const NodeRecord& rec) const {
  auto it = route_seen_.find(Route(rec));
  return it == route_seen_.end() ? rec.last_seen : std::max(rec.last_seen, it->second);
}

std::vector<std::string> NodeRegistry::ReleaseRoute(const std::string& route) {
  route_seen_.erase(route);
  std::vector<std::string> gone;
  for (const NodeRecord* rec : AliveRecords())
    if (Route(*rec) == route) {
      SetAlive(*Find(rec->id), false);
      gone.push_back(rec->id);
    }
  return gone;
}

std::vector<const NodeRecord*> NodeRegistry::AliveRecords() const {
  if (by_name_.size() < records_.size()) {  // records that joined since: sorted, then merged in
    const size_t old = by_name_.size();
    for (uint32_t p = static_cast<uint32_t>(old); p < records_.size(); ++p) by_name_.push_back(p);
    const auto by_id = [this](uint32_t a, uint32_t b) { return records_[a].id < records_[b].id; };
    std::sort(by_name_.begin() + static_cast<std::ptrdiff_t>(old), by_name_.end(), by_id);
    std::inplace_merge(by_name_.begin(), by_name_.begin() + static_cast<std::ptrdiff_t>(old), by_name_.end(), by_id);
  }
  std::vector<const NodeRecord*> out;
  out.reserve(alive_);
  for (uint32_t p : by_name_)
    if (records_[p].alive) out.push_back(&records_[p]);
  return out;
}

std::vector<std::string> NodeRegistry::AliveIds() const {
  std::vector<std::string> ids;
  ids.reserve(alive_);
  for (const NodeRecord* rec : AliveRecords()) ids.push_back(rec->id);
  return ids;
}

}  // namespace edgebed
