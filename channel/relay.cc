#include "channel/relay.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <zmq.hpp>

#include "channel/uplink.h"
#include "codecs/zmq_wire.h"

namespace edgebed {
namespace {

using Clock = std::chrono::steady_clock;

struct Peer {
  std::unique_ptr<zmq::socket_t> up;  // DEALER to the server with the node's identity
  std::unique_ptr<zmq::socket_t> monitor;  // up's connection events
  bool lost = false;                  // up's connection dropped: when it is back, the node must join again
  uint32_t index = 0;
  Clock::time_point last_seen;
  bool left = false;
};

struct Held {  // an OTA round's update waiting for the others
  std::string id;
  ParamSet update;
  wire::FitRes meta;  // everything but the tensors
};

class Relay {
 public:
  explicit Relay(const RelayOptions& o) : opt_(o), front_(ctx_, zmq::socket_type::router) {}

  int Run() {
    auto up = MakeUplink(opt_.channel, opt_.num_nodes, opt_.seed);
    if (!up.ok()) {
      spdlog::error("channel: {}", up.status().message());
      return 1;
    }
    uplink_ = std::move(up.value());
    std::string ep = opt_.listen;
    if (ep.size() > 2 && ep.compare(ep.size() - 2, 2, ":0") == 0) ep = ep.substr(0, ep.size() - 1) + "*";
    if (Status st = CheckBindSecurity("--listen", opt_.listen, opt_.curve); !st.ok()) {
      spdlog::error("channel: {}", st.message());
      return 1;
    }
    if (opt_.curve.enabled()) {
      if (!opt_.curve.allow || opt_.curve.server_public_key.empty()) {
        spdlog::error("channel: --key needs --allow (the nodes' keys) and --server-key (the server's)");
        return 1;
      }
      zap_ = std::make_unique<ZapHandler>(ctx_, *opt_.curve.allow);
      MakeCurveServer(front_, opt_.curve.own);
    }
    front_.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(2 * opt_.max_frame_bytes + 4096));
    front_.set(zmq::sockopt::router_mandatory, 1);
    front_.set(zmq::sockopt::linger, 1000);
    front_.bind(ep);
    const std::string bound = front_.get(zmq::sockopt::last_endpoint);
    if (!opt_.endpoint_file.empty()) {
      std::ofstream(opt_.endpoint_file + ".tmp") << bound << "\n";
      std::filesystem::rename(opt_.endpoint_file + ".tmp", opt_.endpoint_file);
    }
    spdlog::info("channel: {} between nodes on {} and the server on {}", uplink_->Describe(), bound, opt_.server);
    while (!(opt_.stop && opt_.stop->load())) {
      std::vector<zmq::pollitem_t> items = {{front_.handle(), 0, ZMQ_POLLIN, 0}};
      std::vector<std::string> ids;
      for (auto& [id, p] : peers_) {
        items.push_back({p.up->handle(), 0, ZMQ_POLLIN, 0});
        items.push_back({p.monitor->handle(), 0, ZMQ_POLLIN, 0});
        ids.push_back(id);
      }
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(200));
      if (items[0].revents & ZMQ_POLLIN) FromNode();
      for (size_t i = 0; i < ids.size(); ++i) {
        if (items[1 + 2 * i].revents & ZMQ_POLLIN) FromServer(ids[i]);
        if (items[2 + 2 * i].revents & ZMQ_POLLIN) UpstreamEvents(ids[i]);
      }
      if (uplink_->superposes()) MaybeSuperpose(false);
      if (!peers_.empty() && std::all_of(peers_.begin(), peers_.end(), [](auto& kv) { return kv.second.left; })) {
        spdlog::info("channel: every node has left; exiting");
        return 0;
      }
    }
    return 0;
  }

 private:
  // A message as it came, its Envelope frame and the frames its tensors ride in, on to `sock`.
  static void Forward(zmq::socket_t& sock, zmq::message_t&& payload, std::vector<zmq::message_t>&& rest,
                      zmq::send_flags flags) {
    if (!sock.send(std::move(payload), rest.empty() ? flags : flags | zmq::send_flags::sndmore)) return;
    for (size_t i = 0; i < rest.size(); ++i)  // queued with the first part: these do not block
      (void)sock.send(std::move(rest[i]), i + 1 < rest.size() ? flags | zmq::send_flags::sndmore : flags);
  }
  void ToServer(const std::string& id, zmq::message_t&& payload, std::vector<zmq::message_t>&& rest) {
    auto it = peers_.find(id);
    if (it != peers_.end()) Forward(*it->second.up, std::move(payload), std::move(rest), zmq::send_flags::dontwait);
  }
  void ToServer(const std::string& id, wire::Envelope& env, const wire::Attachments* att = nullptr) {
    auto it = peers_.find(id);
    if (it != peers_.end()) wire::SendEnvelope(*it->second.up, env, "", true, att);
  }

  void FromNode() {
    zmq::message_t id_frame, payload;
    if (!front_.recv(id_frame, zmq::recv_flags::dontwait)) return;
    if (!id_frame.more()) return;
    (void)front_.recv(payload);
    std::vector<zmq::message_t> rest;  // the frames its tensors ride in
    wire::RecvRest(front_, payload, &rest);
    const std::string id = id_frame.to_string();
    wire::Envelope env;
    const bool parsed = wire::Decode(payload.data(), payload.size(), opt_.max_frame_bytes, &env).ok() &&
                        wire::CheckAttached(payload.size(), wire::Views(rest), opt_.max_frame_bytes).ok();
    if (parsed && env.has_join() && !peers_.count(id) && zap_) {  // a key joins only as the names it is bound to
      const char* user = zmq_msg_gets(payload.handle(), "User-Id");
      const AllowEntry* entry = user ? zap_->allow().ByLabel(user) : nullptr;
      if (!entry || entry->relay || !entry->Permits(id) || env.join().node_id() != id) {
        ++refused_joins_;
        spdlog::warn("channel: refused the join of '{}': its key is bound to '{}'", wire::Printable(id),
                     user ? wire::Printable(user) : std::string("nothing"));
        return;
      }
    }
    if (parsed && env.has_join() && !peers_.count(id)) {
      Peer p;
      p.up = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::dealer);
      p.up->set(zmq::sockopt::routing_id, id);
      p.up->set(zmq::sockopt::linger, 1000);
      if (opt_.curve.enabled()) MakeCurveClient(*p.up, opt_.curve.own, opt_.curve.server_public_key);
      const std::string mon = "inproc://relay-up-" + std::to_string(++monitors_);
      p.monitor = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::pair);
      if (zmq_socket_monitor(p.up->handle(), mon.c_str(), ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED) == 0) p.monitor->connect(mon);
      p.up->connect(opt_.server);
      p.index = env.join().node_index();
      peers_[id] = std::move(p);
      spdlog::info("channel: {} (index {}) joins through the channel", id, env.join().node_index());
    }
    auto it = peers_.find(id);
    if (it == peers_.end()) {
      spdlog::warn("channel: dropped a frame from '{}', which has not sent join", id);
      return;
    }
    it->second.last_seen = Clock::now();
    if (parsed && env.has_leave()) it->second.left = true;
    if (parsed && env.has_fit_res() && env.fit_res().link_size() == 0 && CarryFit(id, env, wire::Views(rest))) return;
    ToServer(id, std::move(payload), std::move(rest));  // everything else, and anything the server must judge, as is
  }

  // False when the update goes on as it came (the server judges it and tells the node why).
  bool CarryFit(const std::string& id, wire::Envelope& env, const wire::FrameViews& frames) {
    const uint32_t index = peers_[id].index;
    if (index >= opt_.num_nodes) {
      spdlog::warn("channel: {} has index {} outside [0, {}); relayed without a channel", id, index, opt_.num_nodes);
      return false;
    }
    ParamSet update, control_delta;
    Status st = wire::FromTensors(env.fit_res().update(), "fit_res.update", nullptr, &update, frames);
    if (st.ok()) st = wire::FromTensors(env.fit_res().control_delta(), "fit_res.control_delta", nullptr, &control_delta, frames);
    if (!st.ok()) return false;
    auto* res = env.mutable_fit_res();
    if (res->control_delta_size() > 0) wire::ToTensors(control_delta, res->mutable_control_delta());  // inline now
    if (uplink_->superposes()) {
      Held h{id, std::move(update), *res};
      h.meta.clear_update();
      held_.push_back(std::move(h));
      MaybeSuperpose(false);
      return true;
    }
    LinkAccounting acc;
    st = uplink_->Carry(index, res->round(), &update.flat, 0, &acc);
    if (!st.ok()) {
      spdlog::error("channel: {}: {}", id, st.message());
      return true;
    }
    for (size_t i = 0; i < update.flat.size();) {  // NaN = erased: send 0 and the range
      if (!std::isnan(update.flat[i])) {
        ++i;
        continue;
      }
      const size_t lo = i;
      while (i < update.flat.size() && std::isnan(update.flat[i])) update.flat[i++] = 0.0f;
      res->add_erased(lo);
      res->add_erased(i);
    }
    wire::Attachments att;
    wire::AttachTensors(update.specs, std::make_shared<const std::vector<float>>(std::move(update.flat)),
                        res->mutable_update(), &att);
    ToLinkReport(index, acc.per_node[index], res->add_link());
    ToServer(id, env, &att);
    return true;
  }

  // A server that restarted (or resumed) has forgotten the node: when the link is back, the node is
  // told UNKNOWN_NODE, which makes it join again, as it would on a direct link.
  void UpstreamEvents(const std::string& id) {
    auto& p = peers_[id];
    zmq::message_t ev, addr;
    while (p.monitor->recv(ev, zmq::recv_flags::dontwait)) {
      if (ev.more()) (void)p.monitor->recv(addr);
      if (ev.size() < 6) continue;
      uint16_t event;
      std::memcpy(&event, ev.data(), 2);
      if (event == ZMQ_EVENT_DISCONNECTED) {
        p.lost = true;
      } else if (event == ZMQ_EVENT_CONNECTED && p.lost) {
        p.lost = false;
        spdlog::info("channel: the server is back for {}; telling it to join again", id);
        wire::Envelope e;
        e.set_sender("server");
        e.mutable_error()->set_code(wire::UNKNOWN_NODE);
        e.mutable_error()->set_message("the channel's link to the server dropped and is back (the server may have restarted): join again");
        wire::SendEnvelope(front_, e, id, /*dont_wait=*/true);
      }
    }
  }

  void FromServer(const std::string& id) {
    auto& p = peers_[id];
    zmq::message_t payload;
    if (!p.up->recv(payload, zmq::recv_flags::dontwait)) return;
    std::vector<zmq::message_t> rest;
    wire::RecvRest(*p.up, payload, &rest);
    if (uplink_->superposes()) {  // learn who trains in which round
      wire::Envelope env;
      if (wire::Decode(payload.data(), payload.size(), 4 * opt_.max_frame_bytes, &env).ok() && env.has_fit_ins()) {
        if (env.fit_ins().round() != round_) {
          MaybeSuperpose(true);  // whatever is left of the last round goes now
          round_ = env.fit_ins().round();
          expected_.clear();
          round_start_ = Clock::now();
          deadline_s_ = env.fit_ins().deadline_s();
        }
        expected_.insert(id);
      }
    }
    try {
      front_.send(zmq::buffer(id), zmq::send_flags::sndmore);
      Forward(front_, std::move(payload), std::move(rest), zmq::send_flags::none);
    } catch (const zmq::error_t& e) {
      spdlog::warn("channel: cannot reach {}: {}", id, e.what());
    }
  }

  // Analog OTA: once every node expected this round has answered, left, or gone silent, the held
  // updates cross the channel together and one update goes to the server.
  void MaybeSuperpose(bool force) {
    if (held_.empty()) return;
    const auto now = Clock::now();
    bool waiting = false;
    for (const auto& id : expected_) {
      const bool answered = std::any_of(held_.begin(), held_.end(), [&](const Held& h) { return h.id == id; });
      const auto& p = peers_[id];
      const double silent = std::chrono::duration<double>(now - p.last_seen).count();
      if (!answered && !p.left && silent < opt_.liveness_timeout_s) waiting = true;
    }
    const bool late = deadline_s_ > 0 && std::chrono::duration<double>(now - round_start_).count() > deadline_s_;
    if (waiting && !force && !late) return;
    std::vector<OtaInput> in;
    std::vector<Held> group;
    for (auto& h : held_)
      if (h.meta.round() == round_) group.push_back(std::move(h));
    held_.clear();
    if (group.empty()) return;
    const size_t n = group[0].update.flat.size();
    for (const auto& h : group) {
      if (h.update.flat.size() != n) {
        spdlog::error("channel: round {}: updates differ in size; round dropped", round_);
        return;
      }
      in.push_back({peers_[h.id].index, &h.update.flat});
    }
    LinkAccounting acc;
    auto out = uplink_->Superpose(round_, in, &acc);
    wire::Envelope env;
    auto* res = env.mutable_fit_res();
    res->set_round(round_);
    double loss = 0, samples = 0, slowest = 0;
    for (const auto& h : group) {
      res->add_aggregate_of(h.id);
      loss += h.meta.train_loss() * static_cast<double>(h.meta.num_samples());
      samples += static_cast<double>(h.meta.num_samples());
      slowest = std::max(slowest, h.meta.train_time_s());
    }
    res->set_num_samples(static_cast<uint64_t>(samples));
    res->set_train_loss(samples > 0 ? static_cast<float>(loss / samples) : 0.0f);
    res->set_train_time_s(slowest);
    for (const auto& [node, s] : acc.per_node) ToLinkReport(node, s, res->add_link());
    res->set_ota_channel_uses(acc.channel_uses);
    res->set_ota_airtime_s(acc.airtime_s);
    res->set_ota_control_bits(acc.control_bits);
    ParamSet mean;
    mean.specs = group[0].update.specs;
    if (out.ok()) {
      mean.flat = out->mean;
      res->set_ota_active(out->active);
    } else {
      spdlog::warn("channel: round {}: {}", round_, out.status().message());
      mean.flat.assign(n, 0.0f);
      res->set_ota_active(0);
    }
    wire::ToTensors(mean, res->mutable_update());
    spdlog::info("channel: round {}: {} updates superposed, {} above the threshold", round_, group.size(),
                 res->ota_active());
    ToServer(group[0].id, env);
  }

  RelayOptions opt_;
  zmq::context_t ctx_{1};
  std::unique_ptr<ZapHandler> zap_;  // before front_ binds: it answers every node's handshake
  uint64_t refused_joins_ = 0;
  uint64_t monitors_ = 0;
  zmq::socket_t front_;
  std::unique_ptr<Uplink> uplink_;
  std::map<std::string, Peer> peers_;
  std::vector<Held> held_;
  std::set<std::string> expected_;
  uint32_t round_ = 0;
  Clock::time_point round_start_;
  double deadline_s_ = 0;
};

}  // namespace

int RunRelay(const RelayOptions& opt) {
  try {
    Relay r(opt);
    return r.Run();
  } catch (const zmq::error_t& e) {
    spdlog::error("channel: ZeroMQ error: {}", e.what());
    return 1;
  }
}

}  // namespace edgebed
