#include "server/node_link.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <cstring>

#include "codecs/zmq_wire.h"

namespace edgebed {
namespace {

// The connection's peer address ("127.0.0.2"), or "unknown".
std::string PeerIp(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "unknown";
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, buf, sizeof(buf));
  else if (ss.ss_family == AF_INET6) inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, buf, sizeof(buf));
  else return "local";  // ipc://
  return buf;
}

// Raises the soft open-file limit to the hard one; returns the limit in force.
uint64_t RaiseFdLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  if (rl.rlim_cur < rl.rlim_max) {
    const rlim_t before = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
      spdlog::info("raised the open-file limit from {} to {}", static_cast<uint64_t>(before), static_cast<uint64_t>(rl.rlim_max));
    else
      getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur == RLIM_INFINITY ? 1u << 20 : static_cast<uint64_t>(rl.rlim_cur);
}

}  // namespace

NodeLink::NodeLink() : router_(ctx_, zmq::socket_type::router), monitor_(ctx_, zmq::socket_type::pair) {}
NodeLink::~NodeLink() = default;

Result<std::string> NodeLink::Bind(const NodeLinkOptions& opt) {
  opt_ = opt;
  EDGEBED_RETURN_IF_ERROR(CheckBindSecurity("server.bind", opt.bind, opt.curve));
  if (opt.curve.enabled()) {
    if (!opt.curve.allow) return Status::InvalidArgument("server keys without an allow-list (--allow)");
    zap_ = std::make_unique<ZapHandler>(ctx_, *opt.curve.allow);
    MakeCurveServer(router_, opt.curve.own);
    spdlog::info("CURVE: links are encrypted; {} node keys on the allow-list", opt.curve.allow->size());
  } else if (!IsLoopbackEndpoint(opt.bind)) {
    spdlog::warn("server.bind = '{}' without keys (--insecure): any process that reaches the port can join", opt.bind);
  }
  const uint64_t fds = RaiseFdLimit();
  // Keep 64 descriptors for the process itself (logs, data files, the monitor, inproc pipes).
  connection_cap_ = static_cast<uint32_t>(std::min<uint64_t>(opt.max_connections, fds > 128 ? fds - 64 : 64));
  if (connection_cap_ < opt.max_connections)
    spdlog::warn("server.max_connections = {} exceeds what the open-file limit {} allows; accepting at most {}",
                 opt.max_connections, fds, connection_cap_);
  std::string ep = opt.bind;
  if (ep.size() > 2 && ep.compare(ep.size() - 2, 2, ":0") == 0) ep = ep.substr(0, ep.size() - 1) + "*";
  try {
    // Frames up to twice the limit reach Decode, which refuses those over it with an Error naming
    // it; ZeroMQ cuts connections whose frames are larger, so no peer makes the server buffer more.
    router_.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(2 * opt.max_frame_bytes + 4096));
    router_.set(zmq::sockopt::linger, 1000);
    router_.set(zmq::sockopt::router_mandatory, 1);  // sending to a vanished node fails, not blocks
    router_.set(zmq::sockopt::sndhwm, 0);
    // At most 4 messages wait per connection; a node host that sends faster waits in TCP, not in
    // this process (it sends its answers 64 at a time: with 16, 13 MB of updates waited here).
    router_.set(zmq::sockopt::rcvhwm, 4);
    router_.set(zmq::sockopt::handshake_ivl, static_cast<int>(opt.handshake_timeout_s * 1000));
    const std::string mon = "inproc://edgebed-monitor-" + std::to_string(reinterpret_cast<uintptr_t>(this));
    if (zmq_socket_monitor(router_.handle(), mon.c_str(),
                           ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_DISCONNECTED) != 0)
      return Status::IoError("cannot monitor the server socket: " + std::string(zmq_strerror(zmq_errno())));
    monitor_.connect(mon);
    router_.bind(ep);
    endpoint_ = router_.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return Status::IoError("server.bind = '" + opt.bind + "': " + e.what());
  }
  return endpoint_;
}

size_t NodeLink::Send(const std::string& route, wire::Envelope& env) {
  return wire::SendEnvelope(router_, env, route, /*dont_wait=*/true);
}

void NodeLink::Poll(std::chrono::milliseconds timeout, Handler& handler) {
  zmq::pollitem_t items[] = {{router_.handle(), 0, ZMQ_POLLIN, 0}, {monitor_.handle(), 0, ZMQ_POLLIN, 0}};
  try {
    zmq::poll(items, 2, timeout);
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return;  // a signal (Ctrl-C asks for a stop): the caller checks and goes on
    throw;
  }
  // Connection events first: a descriptor reused by a new connection is then never mistaken for
  // the old one, whose close is already handled.
  DrainMonitor();
  if (zap_) stats_.refused_keys = zap_->refused();
  if (items[0].revents & ZMQ_POLLIN) {
    if (!ReadFrames(handler)) return;  // more are waiting: closes are told after them, next time
  }
  // A connection's last frames (a leave, a final update) are queued before its close is seen:
  // they were all read above, so the close is told now, after them.
  auto closed = std::move(closed_routes_);
  closed_routes_.clear();
  for (const auto& route : closed) handler.OnRouteClosed(route);
}

bool NodeLink::ReadFrames(Handler& handler) {
  for (int budget = 0; budget < 256; ++budget) {  // a burst, but let the caller check its clocks
    std::vector<zmq::message_t> parts;
    zmq::message_t part;
    if (!router_.recv(part, zmq::recv_flags::dontwait)) return true;
    parts.push_back(std::move(part));
    while (parts.back().more()) {  // a peer's multipart message: all of it, at most 64 frames kept
      zmq::message_t more;
      if (!router_.recv(more, zmq::recv_flags::dontwait)) break;
      if (parts.size() < 65) parts.push_back(std::move(more));
      else if (!more.more()) break;
    }
    // The connection's descriptor travels as metadata of the peer's own frames (not of the routing-id
    // frame the ROUTER adds); -1 where the transport has none.
    const int fd = parts.size() > 1 ? zmq_msg_get(parts[1].handle(), ZMQ_SRCFD) : -1;
    std::string route = parts[0].to_string();
    if (fd >= 0) route_of_fd_[fd] = route;
    if (zap_ && parts.size() > 1)
      if (const char* user = zmq_msg_gets(parts[1].handle(), "User-Id")) user_of_route_[route] = user;
    handler.OnMessage(route, parts);
    DrainMonitor();
  }
  return false;
}

void NodeLink::DrainMonitor() {
  for (;;) {
    zmq::message_t ev, addr;
    if (!monitor_.recv(ev, zmq::recv_flags::dontwait)) return;
    if (ev.more()) (void)monitor_.recv(addr);
    if (ev.size() < 6) continue;
    uint16_t event;
    int32_t value;
    std::memcpy(&event, ev.data(), 2);
    std::memcpy(&value, static_cast<const char*>(ev.data()) + 2, 4);
    switch (event) {
      case ZMQ_EVENT_ACCEPTED: OnAccepted(value); break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
      case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        ++stats_.handshake_failed;
        spdlog::error("dropped a connection on {}: ZMTP handshake failed (code {:#x}); the peer did not speak "
                      "ZeroMQ (random bytes?) or did not finish within {:g} s", wire::Printable(addr.to_string()), value,
                      opt_.handshake_timeout_s);
        break;
      case ZMQ_EVENT_DISCONNECTED: OnClosed(value); break;
      default: break;
    }
  }
}

void NodeLink::OnAccepted(int fd) {
  const std::string ip = PeerIp(fd);
  const bool over_total = stats_.open_connections >= connection_cap_;
  const bool over_peer = per_peer_[ip] >= opt_.max_connections_per_peer;
  if (over_total || over_peer) {
    ++stats_.refused_connections;
    // Closing the socket's descriptor from here makes ZeroMQ see the connection end and drop it.
    shutdown(fd, SHUT_RDWR);
    ++refusals_unlogged_;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_refusal_log_ > std::chrono::seconds(5)) {
      spdlog::warn("refused {} connection(s), the latest from {}: {} (server.{} = {})", refusals_unlogged_, ip,
                   over_total ? "the server has its most connections" : "that address has its most connections",
                   over_total ? "max_connections" : "max_connections_per_peer",
                   over_total ? connection_cap_ : opt_.max_connections_per_peer);
      last_refusal_log_ = now;
      refusals_unlogged_ = 0;
    }
    return;
  }
  peer_of_fd_[fd] = ip;
  ++per_peer_[ip];
  ++stats_.open_connections;
}

void NodeLink::OnClosed(int fd) {
  if (auto it = peer_of_fd_.find(fd); it != peer_of_fd_.end()) {
    if (--per_peer_[it->second] == 0) per_peer_.erase(it->second);
    --stats_.open_connections;
    peer_of_fd_.erase(it);
  }
  if (auto it = route_of_fd_.find(fd); it != route_of_fd_.end()) {
    closed_routes_.push_back(it->second);
    user_of_route_.erase(it->second);
    route_of_fd_.erase(it);
  }
}

std::string NodeLink::UserOf(const std::string& route) const {
  auto it = user_of_route_.find(route);
  return it == user_of_route_.end() ? std::string() : it->second;
}

}  // namespace edgebed
