#include "node/gnn_node.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <algorithm>
#include <csignal>
#include <cstring>
#include <map>
#include <thread>
#include <tuple>

#include "codecs/zmq_wire.h"
#include "gnn/gnn_model.h"
#include "gnn/gnn_report.h"
#include "gnn/gnn_wire.h"
#include "gnn/virtual_link.h"

namespace edgebed {
namespace {

using Clock = std::chrono::steady_clock;

// Peer tensors over ZeroMQ: one PUSH per peer, one PULL for all that come in. While it waits it
// keeps the server informed (heartbeats) and listens to it (a shutdown ends the wait). Every tensor
// also travels on the virtual clock (gnn/virtual_link.h): it carries its arrival time there.
class ZmqPeers : public PeerTransport {
 public:
  ZmqPeers(zmq::context_t& ctx, zmq::socket_t& server, std::string id, uint32_t self, uint32_t parts,
           const NodeOptions& opt, double timeout_s, int64_t max_frame_bytes, VirtualLinkOptions link)
      : ctx_(ctx), server_(server), id_(std::move(id)), self_(self), parts_(parts), opt_(opt), timeout_s_(timeout_s),
        clock_(link), pull_(ctx, zmq::socket_type::pull) {
    // No legitimate tensor is larger than N x d or the parameter count: ZeroMQ drops the connection
    // of a peer sending more, and the wait for its tensor ends in a timeout naming it.
    pull_.set(zmq::sockopt::maxmsgsize, max_frame_bytes);
    pull_.set(zmq::sockopt::rcvhwm, 0);
  }

  // With a key (--key), the peer socket is a CURVE server admitting no one until gnn_start names the
  // other shards' keys.
  Result<std::string> Bind(const std::string& where) {
    try {
      if (opt_.curve.enabled()) {
        zap_ = std::make_unique<ZapHandler>(ctx_, AllowList::FromPairs({}));
        MakeCurveServer(pull_, opt_.curve.own);
      }
      pull_.bind(where);
      return pull_.get(zmq::sockopt::last_endpoint);
    } catch (const zmq::error_t& e) {
      return Status::IoError("cannot listen for peers on " + where + ": " + e.what());
    }
  }

  Status Connect(const wire::GnnStart& start) {
    const auto& peers = start.peers();
    if (static_cast<uint32_t>(peers.size()) != parts_)
      return Status::InvalidArgument("gnn_start.peers has " + std::to_string(peers.size()) + " endpoints for " +
                                     std::to_string(parts_) + " shards");
    const bool curve = start.peer_keys_size() > 0;
    if (curve && static_cast<uint32_t>(start.peer_keys_size()) != parts_)
      return Status::InvalidArgument("gnn_start.peer_keys has " + std::to_string(start.peer_keys_size()) + " keys for " +
                                     std::to_string(parts_) + " shards");
    if (curve != opt_.curve.enabled())
      return Status::InvalidArgument(curve ? "gnn_start.peer_keys: the shards use CURVE but this node has no --key"
                                           : "this node has a --key but the server sent no peer keys (a server without keys)");
    if (curve) {  // admit exactly the other shards' keys
      std::vector<std::pair<std::string, std::string>> keys;
      for (uint32_t q = 0; q < parts_; ++q)
        if (q != self_) keys.push_back({start.peer_keys(static_cast<int>(q)), "shard-" + std::to_string(q)});
      zap_->Reset(AllowList::FromPairs(keys));
    }
    push_.clear();
    for (uint32_t q = 0; q < parts_; ++q) {
      push_.emplace_back(ctx_, zmq::socket_type::push);
      if (q == self_) continue;
      push_[q].set(zmq::sockopt::sndhwm, 0);
      push_[q].set(zmq::sockopt::linger, 0);
      if (curve) MakeCurveClient(push_[q], opt_.curve.own, start.peer_keys(static_cast<int>(q)));
      try {
        push_[q].connect(peers.Get(static_cast<int>(q)));
      } catch (const zmq::error_t& e) {
        return Status::IoError("gnn_start.peers[" + std::to_string(q) + "] = '" + peers.Get(static_cast<int>(q)) + "': " + e.what());
      }
    }
    return curve ? AwaitHandshakes(start) : Status::Ok();
  }

  // CURVE: every peer link's handshake done before the first tensor is queued on it. A shard may
  // connect before its peer has taken gnn_start and admitted its key; the peer's ZAP handler then
  // refuses it, and libzmq does not always try again (libzmq issue 3519). Nothing is queued yet, so
  // a refused or stalled link is connected again until the handshake succeeds or gnn.peer_timeout_s.
  Status AwaitHandshakes(const wire::GnnStart& start) {
    constexpr int kEvents = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                            ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
    struct Link {
      uint32_t q;
      zmq::socket_t monitor;
      Clock::time_point since;  // of the last connect
      int attempts = 1;
      bool failed = false;       // refused since the last connect
    };
    std::vector<Link> pending;
    for (uint32_t q = 0; q < parts_; ++q) {
      if (q == self_) continue;
      const std::string mon = "inproc://gnn-peer-" + std::to_string(self_) + "-" + std::to_string(q);
      if (zmq_socket_monitor(push_[q].handle(), mon.c_str(), kEvents) != 0)
        return Status::IoError("cannot monitor the link to shard " + std::to_string(q) + ": " + zmq_strerror(zmq_errno()));
      pending.push_back({q, zmq::socket_t(ctx_, zmq::socket_type::pair), Clock::now()});
      pending.back().monitor.connect(mon);
    }
    // The monitors watch only until the links are up.
    struct Unmonitor {
      ZmqPeers* self;
      ~Unmonitor() {
        for (auto& p : self->push_)
          if (p.handle() != nullptr) zmq_socket_monitor(p.handle(), nullptr, 0);
      }
    } unmonitor{this};
    const auto t0 = Clock::now();
    while (!pending.empty()) {
      if (std::chrono::duration<double>(Clock::now() - t0).count() > timeout_s_)
        return Status::Timeout("the CURVE handshake with shard " + std::to_string(pending[0].q) + " did not succeed within " +
                               std::to_string(static_cast<int>(timeout_s_)) + " s (gnn.peer_timeout_s) after " +
                               std::to_string(pending[0].attempts) + " attempts");
      for (size_t i = 0; i < pending.size();) {
        Link& l = pending[i];
        bool up = false, failed = false;
        zmq::message_t ev, addr;
        while (l.monitor.recv(ev, zmq::recv_flags::dontwait)) {
          if (ev.more()) (void)l.monitor.recv(addr);
          if (ev.size() < 6) continue;
          uint16_t event;
          std::memcpy(&event, ev.data(), sizeof(event));
          up |= event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED;
          failed |= event != ZMQ_EVENT_HANDSHAKE_SUCCEEDED;
        }
        if (up) {
          pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(i));
          continue;
        }
        l.failed |= failed;
        const double since = std::chrono::duration<double>(Clock::now() - l.since).count();
        if ((l.failed && since > 0.1) || since > 1.0) {  // a refused link again after 100 ms, a silent one after 1 s
          const std::string& ep = start.peers(static_cast<int>(l.q));
          if (l.attempts % 10 == 1)
            spdlog::info("{}: the link to shard {} {}; connecting again (attempt {})", id_, l.q,
                         l.failed ? "was refused (its key not admitted yet?)" : "has no handshake after 1 s", l.attempts + 1);
          l.failed = false;
          try {
            push_[l.q].disconnect(ep);
            push_[l.q].connect(ep);
          } catch (const zmq::error_t& e) {
            return Status::IoError("gnn_start.peers[" + std::to_string(l.q) + "] = '" + ep + "': " + e.what());
          }
          l.since = Clock::now();
          ++l.attempts;
        }
        ++i;
      }
      if (!pending.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return Status::Ok();
  }

  Status Send(uint32_t to, const PeerTensor& t) override {
    if (to >= push_.size() || to == self_) return Status::InvalidArgument("no peer shard " + std::to_string(to));
    wire::Envelope env;
    env.set_sender(id_);
    ToWire(t, env.mutable_gnn_tensor());
    env.mutable_gnn_tensor()->set_arrival_s(1.0);  // its 9 bytes counted in the frame's size
    env.mutable_gnn_tensor()->set_arrival_s(clock_.Send(env.ByteSizeLong()));
    const size_t n = wire::SendEnvelope(push_[to], env);
    if (n == 0) return Status::Unavailable("could not send " + std::string(TensorKindName(t.kind)) + " to shard " + std::to_string(to));
    const int k = static_cast<int>(t.kind);
    traffic_.bytes[k] += n;
    traffic_.values[k] += t.values.size();
    return Status::Ok();
  }

  Status Receive(uint32_t from, TensorKind kind, uint32_t epoch, uint32_t step, PeerTensor* out) override {
    const Key key{from, static_cast<int>(kind), epoch, step};
    const auto t0 = Clock::now();
    auto last_beat = Clock::now();
    for (;;) {
      if (auto it = held_.find(key); it != held_.end()) {
        *out = std::move(it->second);
        held_.erase(it);
        clock_.Receive(out->arrival_s);
        wait_s_ += std::chrono::duration<double>(Clock::now() - t0).count();
        return Status::Ok();
      }
      const double waited = std::chrono::duration<double>(Clock::now() - t0).count();
      if (waited > timeout_s_)
        return Status::Timeout("waited " + std::to_string(static_cast<int>(waited)) + " s (gnn.peer_timeout_s) for the " +
                               TensorKindName(kind) + " tensor of epoch " + std::to_string(epoch) + " step " +
                               std::to_string(step) + " from shard " + std::to_string(from) + " (process died or link lost?)");
      if (std::chrono::duration<double>(Clock::now() - last_beat).count() >= opt_.heartbeat_s) {
        last_beat = Clock::now();
        Heartbeat(epoch);
      }
      if (opt_.stop && opt_.stop->load()) {  // SIGTERM/SIGINT: the shard leaves, even mid-epoch
        shutdown_ = true;
        return Status::Unavailable("stopped by a signal (SIGTERM or SIGINT)");
      }
      zmq::pollitem_t items[] = {{pull_.handle(), 0, ZMQ_POLLIN, 0}, {server_.handle(), 0, ZMQ_POLLIN, 0}};
      try {
        zmq::poll(items, 2, std::chrono::milliseconds(200));
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) throw;
        continue;  // a signal: the stop flag is checked above
      }
      if (items[1].revents & ZMQ_POLLIN) EDGEBED_RETURN_IF_ERROR(FromServer());
      if (items[0].revents & ZMQ_POLLIN) {
        zmq::message_t msg;
        if (!pull_.recv(msg, zmq::recv_flags::dontwait)) continue;
        wire::Envelope env;
        PeerTensor t;
        Status st = wire::Decode(msg.data(), msg.size(), msg.size() + 1, &env);
        if (st.ok() && !env.has_gnn_tensor()) st = Status::InvalidArgument(wire::BodyName(env) + " on the peer socket; peers send gnn_tensor");
        if (st.ok()) st = FromWire(env.gnn_tensor(), parts_, &t);
        if (!st.ok()) {  // a malformed peer frame is dropped and logged; the epoch goes on waiting
          spdlog::error("{}: dropped a peer frame of {} bytes: {}", id_, msg.size(), st.message());
          continue;
        }
        held_[Key{t.from, static_cast<int>(t.kind), t.epoch, t.step}] = std::move(t);
      }
    }
  }

  void Heartbeat(uint32_t epoch, float progress = 0.0f) {
    wire::Envelope hb;
    hb.set_sender(id_);
    hb.mutable_heartbeat()->set_round(epoch);
    hb.mutable_heartbeat()->set_progress(progress);
    wire::SendEnvelope(server_, hb, "", /*dont_wait=*/true);
  }

  ShardTraffic TakeTraffic() {
    ShardTraffic t = traffic_;
    traffic_ = ShardTraffic{};
    return t;
  }
  double TakeWait() {
    const double w = wait_s_;
    wait_s_ = 0.0;
    return w;
  }
  bool shutdown() const { return shutdown_; }
  VirtualClock& clock() { return clock_; }

 private:
  using Key = std::tuple<uint32_t, int, uint32_t, uint32_t>;

  // A message from the server in the middle of an epoch: only a shutdown or an error matters.
  Status FromServer() {
    zmq::message_t msg;
    if (!server_.recv(msg, zmq::recv_flags::dontwait)) return Status::Ok();
    wire::Envelope env;
    if (!wire::Decode(msg.data(), msg.size(), wire::kDefaultMaxFrameBytes, &env).ok()) return Status::Ok();
    if (env.has_shutdown()) {
      shutdown_ = true;
      return Status::Unavailable("the server says shutdown (" + wire::Printable(env.shutdown().reason()) + ")");
    }
    if (env.has_error())
      spdlog::error("{}: server error {}: {}", id_, wire::ErrorCode_Name(env.error().code()),
                    wire::Printable(env.error().message()));
    else
      spdlog::warn("{}: ignoring {} from the server in the middle of an epoch", id_, wire::BodyName(env));
    return Status::Ok();
  }

  zmq::context_t& ctx_;
  zmq::socket_t& server_;
  std::string id_;
  uint32_t self_, parts_;
  const NodeOptions& opt_;
  double timeout_s_;
  VirtualClock clock_;
  std::unique_ptr<ZapHandler> zap_;  // CURVE: which peer keys the pull socket admits
  zmq::socket_t pull_;
  std::vector<zmq::socket_t> push_;
  std::map<Key, PeerTensor> held_;
  ShardTraffic traffic_;
  double wait_s_ = 0.0;
  bool shutdown_ = false;
};

void SendError(zmq::socket_t& sock, const std::string& id, wire::ErrorCode code, const std::string& m, uint32_t epoch) {
  spdlog::error("{}: {}", id, m);
  wire::Envelope e;
  e.set_sender(id);
  e.mutable_error()->set_code(code);
  e.mutable_error()->set_message(m);
  e.mutable_error()->set_round(epoch);
  wire::SendEnvelope(sock, e);
}

}  // namespace

int RunGnnNode(ServerInbox& inbox, const std::string& id, const wire::JoinAck& ack, const NodeOptions& opt) {
  zmq::socket_t& sock = inbox.socket();
  if (!ack.accepted()) {
    spdlog::error("{}: join refused: {}", id, wire::Printable(ack.reason()));
    return 1;
  }
  const GnnConfig cfg = FromWire(ack.gnn());
  const uint32_t shard_index = ack.gnn().shard();
  SetGnnThreads(static_cast<int>(cfg.threads ? cfg.threads : opt.threads));
  const auto t0 = Clock::now();
  auto graph = LoadGraph(cfg, ack.gnn().data_dir().empty() ? opt.data_dir : ack.gnn().data_dir());
  if (!graph.ok()) {
    SendError(sock, id, wire::REJECTED, "cannot build the graph: " + graph.status().message(), 0);
    return 1;
  }
  auto shard = GnnShard::Create(graph.value(), cfg, shard_index);
  if (!shard.ok()) {
    SendError(sock, id, wire::REJECTED, "cannot build GNN shard " + std::to_string(shard_index) + ": " + shard.status().message(), 0);
    return 1;
  }
  zmq::context_t ctx(1);
  const int64_t largest = std::max<int64_t>(static_cast<int64_t>(graph->num_vertices()) * cfg.hidden,
                                            static_cast<int64_t>(GnnParameterCount(cfg, graph->feature_dim, graph->num_classes)));
  if (Status st = CheckVirtualLink(cfg.link()); !st.ok()) {
    SendError(sock, id, wire::REJECTED, "join_ack.gnn: " + st.message(), 0);
    return 1;
  }
  ZmqPeers peers(ctx, sock, id, shard_index, cfg.shards(), opt, cfg.peer_timeout_s, 4 * largest + (1 << 20), cfg.link());
  auto endpoint = peers.Bind(opt.peer_bind);
  if (!endpoint.ok()) {
    SendError(sock, id, wire::REJECTED, endpoint.status().message(), 0);
    return 1;
  }
  spdlog::info("{}: {} ({} parameters), graph {} built in {:.1f} s; peers reach it on {}", id, shard.value()->Describe(),
               shard.value()->NumParameters(), graph->description, std::chrono::duration<double>(Clock::now() - t0).count(),
               endpoint.value());
  {
    wire::Envelope ready;
    ready.set_sender(id);
    ready.mutable_gnn_ready()->set_endpoint(endpoint.value());
    ready.mutable_gnn_ready()->set_parameters(shard.value()->NumParameters());
    ready.mutable_gnn_ready()->set_describe(shard.value()->Describe());
    wire::SendEnvelope(sock, ready);
  }
  bool started = false;
  for (;;) {
    wire::Envelope in;
    const auto got = inbox.Next(&in);
    if (got == ServerInbox::Got::kStop) {
      inbox.Leave("stopped by a signal (SIGTERM or SIGINT)");
      spdlog::info("{}: stopped by a signal; left the run", id);
      return 0;
    }
    if (got != ServerInbox::Got::kMessage) return 1;
    if (in.has_gnn_start()) {
      Status st = peers.Connect(in.gnn_start());
      if (st.ok() && !in.gnn_start().state().empty()) {  // a resumed run: the shard as the checkpoint holds it
        st = shard.value()->LoadState(in.gnn_start().state());
        if (st.ok()) spdlog::info("{}: shard state restored from the server's checkpoint", id);
      }
      if (!st.ok()) {
        SendError(sock, id, wire::REJECTED, "gnn_start: " + st.message(), 0);
        return 1;
      }
      started = true;
      spdlog::info("{}: connected to {} peer shards", id, cfg.shards() - 1);
    } else if (in.has_gnn_epoch()) {
      const wire::GnnEpoch& e = in.gnn_epoch();
      if (!started) {
        SendError(sock, id, wire::UNEXPECTED, "gnn_epoch before gnn_start", e.epoch());
        continue;
      }
      const bool crash = e.crash_mid_epoch();
      auto last_beat = Clock::now();
      auto progress = [&](double done) {
        if (std::chrono::duration<double>(Clock::now() - last_beat).count() >= opt.heartbeat_s) {
          last_beat = Clock::now();
          peers.Heartbeat(e.epoch(), static_cast<float>(done));
        }
        if (crash && done >= 0.5) {
          spdlog::warn("{}: fault injection: killing this process mid-epoch {}", id, e.epoch());
          spdlog::default_logger()->flush();
          std::raise(SIGKILL);
        }
      };
      ShardStats st;
      peers.clock().StartEpoch();
      Status s = shard.value()->TrainEpoch(e.epoch(), &peers, progress, &st);
      st.virtual_train_s = peers.clock().Now();
      if (s.ok() && e.evaluate()) s = shard.value()->Evaluate(e.epoch(), &peers, &st);
      if (!s.ok()) {
        if (peers.shutdown()) {
          spdlog::info("{}: {} during epoch {}; leaving", id, s.message(), e.epoch());
          inbox.Leave(inbox.Stopping() ? "stopped by a signal (SIGTERM or SIGINT)" : "shutdown mid-epoch");
          return 0;
        }
        SendError(sock, id, wire::UNAVAILABLE, "epoch " + std::to_string(e.epoch()) + ": " + s.message(), e.epoch());
        continue;
      }
      wire::Envelope done;
      done.set_sender(id);
      done.mutable_gnn_epoch_done()->set_epoch(e.epoch());
      if (e.checkpoint()) {
        auto state = shard.value()->SaveState();
        if (!state.ok()) {
          SendError(sock, id, wire::UNAVAILABLE, "epoch " + std::to_string(e.epoch()) + ": " + state.status().message(), e.epoch());
          continue;
        }
        done.mutable_gnn_epoch_done()->set_state(std::move(state).value());
      }
      st.wait_s = peers.TakeWait();
      ToWire(st, peers.TakeTraffic(), done.mutable_gnn_epoch_done());
      wire::SendEnvelope(sock, done);
    } else if (in.has_shutdown()) {
      spdlog::info("{}: server says shutdown ({}); leaving", id, wire::Printable(in.shutdown().reason()));
      inbox.Leave("shutdown");
      return 0;
    } else if (in.has_join_ack()) {  // joined again after a lost link: only the same run goes on
      if (!in.join_ack().accepted() || in.join_ack().run_id() != ack.run_id()) {
        spdlog::error("{}: the server now runs {}; this shard belonged to run {}; exiting", id,
                      wire::Printable(in.join_ack().run_id()), wire::Printable(ack.run_id()));
        return 1;
      }
      spdlog::info("{}: joined run {} again", id, wire::Printable(ack.run_id()));
    } else if (in.has_error()) {
      if (in.error().code() == wire::REJECTED) return 1;
    } else {
      spdlog::warn("{}: ignoring unexpected {} from the server", id, wire::BodyName(in));
    }
  }
}

}  // namespace edgebed
