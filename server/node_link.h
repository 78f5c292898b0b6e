// The server's end of every node connection: one ZeroMQ ROUTER socket, its monitor, and what is
// known of each TCP connection. It sends and receives frames and tells its handler when a
// connection that carried frames closes; it decides nothing about nodes, rounds or messages.
//
// Connection identity: a frame's route is the routing id of the connection it came over. The link
// maps each connection's file descriptor to its route (ZMQ_SRCFD), so a closed connection frees
// exactly the route it carried. Limits: at most `max_connections` connections in all and
// `max_connections_per_peer` from one IP address; the rest are closed at once and logged. TCP
// connections that never finish the ZMTP handshake are closed after `handshake_timeout_s`.
// Security: with keys, every connection is CURVE (encrypted, and authenticated by a ZAP handler
// that admits only allow-listed keys); without keys the link binds loopback addresses only, unless
// told it is insecure.
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "codecs/curve.h"
#include "codecs/status.h"
#include "codecs/wire.h"

namespace edgebed {

struct NodeLinkOptions {
  std::string bind = "tcp://127.0.0.1:0";  // port 0 = any free port
  size_t max_frame_bytes = 64u << 20;      // ZeroMQ cuts connections whose frames exceed twice this
  uint32_t max_connections = 4096;          // all peers; lowered to what the fd limit allows
  uint32_t max_connections_per_peer = 256;  // from one IP address
  double handshake_timeout_s = 10.0;        // ZMTP handshake must finish within this
  CurveOptions curve;                       // keys: CURVE with the allow-list; none: loopback only (or insecure)
};

struct LinkStats {
  uint64_t handshake_failed = 0;      // connections that did not speak ZMTP (e.g. random bytes)
  uint64_t refused_connections = 0;   // closed at once: over a connection limit
  uint64_t open_connections = 0;      // now
  uint64_t refused_keys = 0;          // CURVE handshakes with a key not on the allow-list (or no CURVE)
};

class NodeLink {
 public:
  // What arrives: a frame (one multipart message) from a route, or the close of a route's connection.
  class Handler {
   public:
    virtual ~Handler() = default;
    virtual void OnMessage(const std::string& route, std::vector<zmq::message_t>& parts) = 0;
    virtual void OnRouteClosed(const std::string& route) = 0;
  };

  NodeLink();
  ~NodeLink();
  NodeLink(const NodeLink&) = delete;
  NodeLink& operator=(const NodeLink&) = delete;

  // Raises this process's open-file limit to its hard limit (logged), binds, returns the endpoint.
  [[nodiscard]] Result<std::string> Bind(const NodeLinkOptions& opt);
  // Sends `env` to the connection `route`; returns the bytes sent, 0 if that connection is gone.
  size_t Send(const std::string& route, wire::Envelope& env);
  // Waits up to `timeout` for frames and connection events and hands each to `handler`.
  // A signal (EINTR) returns early; the caller checks its stop flag.
  void Poll(std::chrono::milliseconds timeout, Handler& handler);
  const LinkStats& stats() const { return stats_; }
  const std::string& endpoint() const { return endpoint_; }
  // With CURVE: the allow-list, and the label of the key a route's connection authenticated with
  // (its ZAP User-Id, e.g. "node-3"); null / empty without CURVE.
  const AllowList* allow() const { return zap_ ? &zap_->allow() : nullptr; }
  std::string UserOf(const std::string& route) const;

 private:
  bool ReadFrames(Handler& handler);  // true when every waiting frame was read
  void DrainMonitor();
  void OnAccepted(int fd);
  void OnClosed(int fd);

  NodeLinkOptions opt_;
  zmq::context_t ctx_{1};
  std::unique_ptr<ZapHandler> zap_;  // before router_: it must answer the router's first handshake
  zmq::socket_t router_;
  zmq::socket_t monitor_;
  std::string endpoint_;
  uint32_t connection_cap_ = 0;               // max_connections, within the fd limit
  std::map<int, std::string> peer_of_fd_;     // accepted connections: fd -> peer IP
  std::map<std::string, uint32_t> per_peer_;  // open connections per peer IP
  std::map<int, std::string> route_of_fd_;    // connections that carried frames: fd -> route
  std::map<std::string, std::string> user_of_route_;  // CURVE: route -> its key's label
  std::vector<std::string> closed_routes_;    // closed since the last Poll, told after their frames
  LinkStats stats_;
  std::chrono::steady_clock::time_point last_refusal_log_{};
  uint64_t refusals_unlogged_ = 0;
};

}  // namespace edgebed
