// Which nodes have joined, which are alive, and when each was last heard from (Flower's
// ClientManager). The server loop asks it; it never talks to the network itself.
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "codecs/status.h"
#include "splitnets/device_profile.h"

namespace edgebed {

// The profile of a device that reports none (all zero: its measured wall time is its cost).
const std::shared_ptr<const DeviceProfile>& MeasuredProfile();

struct NodeRecord {
  std::string id;
  std::string route;             // routing id of the connection that carries this node (a host's)
  bool simulated = false;
  // From join; "measured" (all zero) for a real device. Shared among records with equal profiles
  // (NodeRegistry::SetProfile): 100,000 simulated devices have a handful.
  std::shared_ptr<const DeviceProfile> profile = MeasuredProfile();
  uint64_t num_samples = 0;      // from join, then from its updates
  uint32_t index = 0;
  bool alive = false;            // alive and ready change only through the registry (it counts them)
  bool ready = false;            // has its data and model (said with a round-0 heartbeat)
  std::chrono::steady_clock::time_point last_seen;
  std::string gone_reason;       // why it last stopped being alive (left, connection closed, silent); "" while alive
  uint32_t rounds_ok = 0, rounds_failed = 0;
  uint32_t progress_round = 0;   // the round its progress is of
  float progress = 0.0f;         // share of its local work done (heartbeats, split steps), 0..1
};

// Joins, counts and index lookups take O(log N) (a map by id, a table by index and running counts),
// so 100,000 simulated nodes join in linear time.
class NodeRegistry {
 public:
  explicit NodeRegistry(uint32_t num_nodes) : num_nodes_(num_nodes), holder_(num_nodes) {}
  // Admits node `id` at `index`, bound to the connection `route` (its own, or its node host's).
  // A node that left, failed or lost its connection may join again; an alive node's id and index
  // are refused to any other connection (no hijacking). Errors name the field and the holder.
  [[nodiscard]] Status Join(const std::string& id, const std::string& route, uint32_t index,
                            std::chrono::steady_clock::time_point now);
  // The record holding index `index`: its alive node, else the last that held it (null: never joined).
  const NodeRecord* ByIndex(uint32_t index) const;
  NodeRecord* Find(const std::string& id);
  const NodeRecord* Find(const std::string& id) const;
  void Touch(const std::string& id, std::chrono::steady_clock::time_point now);
  // A frame arrived over connection `route`: the process behind it is alive, whichever node it spoke for.
  void TouchRoute(const std::string& route, std::chrono::steady_clock::time_point now) { route_seen_[route] = now; }
  // When node `rec` or the process carrying it (a node host, for all its nodes) was last heard from:
  // a host busy training one of its nodes still has the others' fit_ins queued.
  std::chrono::steady_clock::time_point LastHeard(const NodeRecord& rec) const;
  void MarkGone(const std::string& id);
  void MarkReady(const std::string& id);  // has prepared its data and model
  // Sets `rec`'s profile, shared with an earlier record's when equal (the last 16 distinct ones are
  // kept for that; a peer sending a new profile with every join makes the registry grow no faster).
  void SetProfile(NodeRecord& rec, const DeviceProfile& profile);
  // The connection `route` closed: every alive node it carried is gone; returns their ids.
  std::vector<std::string> ReleaseRoute(const std::string& route);
  std::vector<std::string> AliveIds() const;  // sorted
  size_t alive_count() const;
  size_t ready_count() const;  // alive and ready

 private:
  void SetAlive(NodeRecord& rec, bool alive);  // keeps holder_ and the counts
  uint32_t num_nodes_;
  std::map<std::string, NodeRecord> nodes_;  // records are never erased: pointers to them stay valid
  std::vector<NodeRecord*> holder_;  // by index: the alive node holding it (null = none)
  size_t alive_ = 0, ready_ = 0;     // alive nodes; alive and ready nodes
  std::map<std::string, std::chrono::steady_clock::time_point> route_seen_;  // open connections only
  std::vector<std::shared_ptr<const DeviceProfile>> recent_profiles_;         // SetProfile's last distinct ones
};

}  // namespace edgebed
