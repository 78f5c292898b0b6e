// A node host: many simulated nodes in one process, multiplexed over one ZeroMQ connection (each
// message names its node in Envelope.node). Each simulated node has its own identity, data share,
// device profile and seeded streams, and speaks the same protocol as a real node, so one server sees
// real and simulated nodes alike. Training is real (libtorch, one shared model object, one node at a
// time); the clock is virtual: a round costs the node what its device profile says.
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <string>

#include "codecs/curve.h"

#include "node/availability.h"
#include "splitnets/device_profile.h"

namespace edgebed {

struct NodeHostOptions {
  std::string server;
  uint32_t first = 0;              // hosts nodes first .. first + count - 1
  uint32_t count = 1;
  std::string data_dir;
  std::string state_dir;           // each node's carried state (<id>.carry) survives a restart here; "" = memory
  uint64_t seed = 1;               // the run's seed: profiles are drawn from it
  std::string profiles = "rpi4";   // mix of profiles, e.g. "rpi4:0.5,phone:0.5"
  std::map<std::string, DeviceProfile> custom_profiles;  // defined by the scenario
  AvailabilitySpec availability;
  uint32_t num_nodes = 1;          // in the whole federation (availability, checks)
  int threads = 1;
  double server_timeout_s = 900.0;
  double reconnect_timeout_s = 120.0;  // a lost server: retry this long (each node then joins again)
  double heartbeat_s = 1.0;
  CurveOptions curve;              // --key, --server-key: CURVE to the server
  const std::atomic<bool>* stop = nullptr;  // set (SIGTERM): every hosted node leaves, then exit 0
};

// Runs until every hosted node is told to shut down (0), or on a fatal error (1).
int RunNodeHost(const NodeHostOptions& opt);

}  // namespace edgebed
