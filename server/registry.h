// Which nodes have joined, which are alive, and when each was last heard from (Flower's
// ClientManager). The server loop asks it; it never talks to the network itself.
#pragma once
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "codecs/status.h"
#include "server/shared_values.h"
#include "splitnets/device_profile.h"

namespace edgebed {

// 88 bytes: a server holds one per node that ever joined (100,000 for a simulated population).
struct NodeRecord {
  std::string id;
  std::chrono::steady_clock::time_point last_seen;
  uint64_t num_samples = 0;      // from join, then from its updates
  uint32_t index = 0;
  uint32_t route = 0;            // slot of the connection that carries it (a host's): NodeRegistry::Route
  uint32_t profile = 0;          // slot of its device profile (shared by equal ones): NodeRegistry::Profile
  uint32_t rounds_ok = 0, rounds_failed = 0;
  uint32_t progress_round = 0;   // the round its progress is of
  float progress = 0.0f;         // share of its local work done (heartbeats, split steps), 0..1
  bool simulated = false;
  bool alive = false;            // alive, ready, route and profile change only through the registry
  bool ready = false;            // has its data and model (said with a round-0 heartbeat)
};

// Joins, lookups by id or index and the counts take O(1) (an open-addressing table by id, a table by
// index and running counts), so 100,000 simulated nodes join in linear time.
class NodeRegistry {
 public:
  explicit NodeRegistry(uint32_t num_nodes);
  // Admits node `id` at `index`, bound to the connection `route` (its own, or its node host's).
  // A node that left, failed or lost its connection may join again; an alive node's id and index
  // are refused to any other connection (no hijacking). Errors name the field and the holder.
  [[nodiscard]] Status Join(const std::string& id, const std::string& route, uint32_t index,
                            std::chrono::steady_clock::time_point now);
  // The record holding index `index`: its alive node, else the last that held it (null: never joined).
  const NodeRecord* ByIndex(uint32_t index) const;
  // Records are never erased: a pointer stays valid for the registry's life.
  NodeRecord* Find(std::string_view id);
  const NodeRecord* Find(std::string_view id) const;
  const std::string& Route(const NodeRecord& rec) const { return routes_[rec.route]; }
  // Its device profile; "measured" (all zero: its wall time is its cost) until SetProfile.
  const DeviceProfile& Profile(const NodeRecord& rec) const { return profiles_[rec.profile]; }
  void Touch(const std::string& id, std::chrono::steady_clock::time_point now);
  // A frame arrived over connection `route`: the process behind it is alive, whichever node it spoke for.
  void TouchRoute(const std::string& route, std::chrono::steady_clock::time_point now) { route_seen_[route] = now; }
  // When node `rec` or the process carrying it (a node host, for all its nodes) was last heard from:
  // a host busy training one of its nodes still has the others' fit_ins queued.
  std::chrono::steady_clock::time_point LastHeard(const NodeRecord& rec) const;
  // Node `id` is no longer alive; `reason` (left, connection closed, silent) is kept until it joins again.
  void MarkGone(const std::string& id, const std::string& reason = "");
  const std::string& GoneReason(const NodeRecord& rec) const;  // "" while alive or when none was given
  void MarkReady(const std::string& id);  // has prepared its data and model
  // Sets `rec`'s profile, one copy per distinct profile among the records.
  void SetProfile(NodeRecord& rec, const DeviceProfile& profile);
  // The connection `route` closed: every alive node it carried is gone; returns their ids.
  std::vector<std::string> ReleaseRoute(const std::string& route);
  std::vector<const NodeRecord*> AliveRecords() const;  // sorted by id
  std::vector<std::string> AliveIds() const;            // sorted
  size_t alive_count() const { return alive_; }
  size_t ready_count() const { return ready_; }  // alive and ready

 private:
  static constexpr uint32_t kNone = UINT32_MAX;
  void SetAlive(NodeRecord& rec, bool alive);  // keeps holder_ and the counts
  uint32_t Position(std::string_view id) const;  // in records_, or kNone
  void Insert(uint32_t position);                // into the table by id (grows it at half full)
  uint32_t num_nodes_;
  std::deque<NodeRecord> records_;  // in joining order, never erased
  std::vector<uint32_t> by_id_;     // open addressing, linear probing: record position + 1 (0 = free)
  std::vector<uint32_t> holder_;    // by index: position of the alive node holding it (kNone = none)
  mutable std::vector<uint32_t> by_name_;  // record positions sorted by id (extended when asked)
  size_t alive_ = 0, ready_ = 0;    // alive nodes; alive and ready nodes
  SharedValues<std::string> routes_;
  SharedValues<DeviceProfile> profiles_;
  std::map<uint32_t, std::string> gone_reason_;  // by position: gone nodes whose reason was given
  std::map<std::string, std::chrono::steady_clock::time_point> route_seen_;  // open connections only
};

}  // namespace edgebed
