#include "node/server_session.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>

namespace edgebed {

ServerSession::ServerSession(const std::string& routing_id, const std::string& endpoint, size_t max_frame_bytes,
                             double reconnect_timeout_s, const CurveOptions& curve)
    : endpoint_(endpoint), reconnect_timeout_s_(reconnect_timeout_s) {
  if (curve.enabled()) MakeCurveClient(sock_, curve.own, curve.server_public_key);
  else if (!IsLoopbackEndpoint(endpoint))
    spdlog::warn("connecting to {} without keys: updates cross the network in the clear (give --key and --server-key)", endpoint);
  sock_.set(zmq::sockopt::routing_id, routing_id);
  sock_.set(zmq::sockopt::linger, 2000);
  sock_.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(max_frame_bytes));
  sock_.set(zmq::sockopt::sndhwm, 0);
  sock_.set(zmq::sockopt::rcvhwm, 0);
  sock_.set(zmq::sockopt::reconnect_ivl, 100);       // after a lost connection: retry in 0.1 s,
  sock_.set(zmq::sockopt::reconnect_ivl_max, 5000);  // doubling up to 5 s
  const std::string mon = "inproc://session-monitor-" + std::to_string(reinterpret_cast<uintptr_t>(this));
  if (zmq_socket_monitor(sock_.handle(), mon.c_str(),
                         ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CONNECT_RETRIED |
                             ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) == 0)
    monitor_.connect(mon);
  sock_.connect(endpoint);
}

ServerSession::Event ServerSession::Wait(std::chrono::milliseconds timeout) {
  zmq::pollitem_t items[] = {{sock_.handle(), 0, ZMQ_POLLIN, 0}, {monitor_.handle(), 0, ZMQ_POLLIN, 0}};
  try {
    zmq::poll(items, 2, timeout);
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR) throw;
    return Event::kIdle;  // a signal: the caller checks its stop flag
  }
  zmq::message_t ev, addr;
  while (monitor_.recv(ev, zmq::recv_flags::dontwait)) {
    if (ev.more()) (void)monitor_.recv(addr);
    if (ev.size() < 6) continue;
    uint16_t event;
    std::memcpy(&event, ev.data(), 2);
    if ((event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH || event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) && !told_refused_) {
      told_refused_ = true;  // ZeroMQ keeps retrying; the cause is said once
      spdlog::error("the server at {} refused this node's {}; is this node's public key on the server's allow-list, "
                    "and --server-key the server's key? still trying", endpoint_,
                    event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ? "key" : "handshake (keys on one side only?)");
    } else if (event == ZMQ_EVENT_CONNECT_RETRIED && !connected_once_ && !told_unreachable_ &&
        std::chrono::steady_clock::now() - started_ > std::chrono::seconds(3)) {
      // A wrong address or a server that is not up: say so within seconds, then keep trying.
      told_unreachable_ = true;
      spdlog::error("cannot reach the server at {} (connection refused or no route); is the address right and the "
                    "server up? still trying", endpoint_);
    } else if (event == ZMQ_EVENT_DISCONNECTED && !lost_since_) {
      lost_since_ = std::chrono::steady_clock::now();
      spdlog::warn("lost the connection to {}; reconnecting for up to {:.0f} s", endpoint_, reconnect_timeout_s_);
    } else if (event == ZMQ_EVENT_CONNECTED && !connected_once_) {
      connected_once_ = true;
    } else if (event == ZMQ_EVENT_CONNECTED && lost_since_) {
      spdlog::info("reconnected to {}; joining again", endpoint_);
      lost_since_.reset();
      reconnected_ = true;
    }
  }
  if (items[0].revents & ZMQ_POLLIN) return Event::kMessage;
  if (reconnected_) {
    reconnected_ = false;
    return Event::kReconnected;
  }
  if (lost_since_ && std::chrono::duration<double>(std::chrono::steady_clock::now() - *lost_since_).count() >
                         reconnect_timeout_s_)
    return Event::kLost;
  return Event::kIdle;
}

}  // namespace edgebed
