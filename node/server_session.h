// A node's (or a node host's) connection to the server: one DEALER socket carrying the node's
// identity, ZeroMQ's own reconnection with backoff (0.1 s doubling to 5 s), and a monitor that says
// when the link went down and when it came back, so that the caller joins again (the server may
// have restarted, or resumed from its checkpoint) or gives up after `reconnect_timeout_s`.
#pragma once
#include <chrono>
#include <optional>
#include <string>
#include <zmq.hpp>

#include "codecs/curve.h"

namespace edgebed {

class ServerSession {
 public:
  enum class Event {
    kIdle,         // nothing within the timeout
    kMessage,      // a frame from the server waits on socket()
    kReconnected,  // the link is back after a loss: join again
    kLost,         // the link has been down for longer than reconnect_timeout_s
  };

  // Connects to `endpoint` as `routing_id` (frames up to `max_frame_bytes`); over CURVE when
  // curve.own is set (with curve.server_public_key). A server that refuses the key is logged once.
  ServerSession(const std::string& routing_id, const std::string& endpoint, size_t max_frame_bytes,
                double reconnect_timeout_s, const CurveOptions& curve = {});
  ServerSession(const ServerSession&) = delete;
  ServerSession& operator=(const ServerSession&) = delete;

  // Waits up to `timeout` for a frame or a change of the link.
  Event Wait(std::chrono::milliseconds timeout);
  zmq::socket_t& socket() { return sock_; }
  const std::string& endpoint() const { return endpoint_; }

 private:
  std::string endpoint_;
  double reconnect_timeout_s_;
  zmq::context_t ctx_{1};
  zmq::socket_t sock_{ctx_, zmq::socket_type::dealer};
  zmq::socket_t monitor_{ctx_, zmq::socket_type::pair};
  std::optional<std::chrono::steady_clock::time_point> lost_since_;
  bool reconnected_ = false;
  bool connected_once_ = false, told_unreachable_ = false, told_refused_ = false;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace edgebed
