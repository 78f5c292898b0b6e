// `edgebed channel`: the uplink as a process of its own. Nodes (real devices, or local processes)
// connect to it instead of the server; it relays every message both ways, and puts each update
// through the scenario's channel on the way up: orthogonal links carry each fit_res (erasures and a
// LinkReport travel with it); analog OTA collects the round's updates of every node it relays for and
// sends the server one update, the channel's estimate of their mean. The server trusts the report
// and does not apply its own channel to relayed updates.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>

#include "channel/channel_config.h"
#include "codecs/curve.h"

namespace edgebed {

struct RelayOptions {
  std::string listen = "tcp://127.0.0.1:0";  // where nodes connect (port 0 = any free port)
  std::string server;                        // the server's endpoint
  ChannelConfig channel;
  uint32_t num_nodes = 1;
  uint64_t seed = 1;
  double liveness_timeout_s = 15.0;  // OTA: a node silent this long no longer holds up the round
  size_t max_frame_bytes = 64u << 20;
  std::string endpoint_file;         // written once bound
  std::atomic<bool>* stop = nullptr;
  // Keys: nodes connect over CURVE and only allow-listed keys get in, each joining only as the node
  // names its key is bound to; the relay reaches the server over CURVE with its own key (on the
  // server's allow-list as *relay*). Without keys `listen` must be a loopback address (or insecure).
  CurveOptions curve;
};

// Runs until every node that joined has left (0), or on error (1).
int RunRelay(const RelayOptions& opt);

}  // namespace edgebed
