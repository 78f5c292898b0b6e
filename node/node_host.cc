#include "node/node_host.h"

#include <optional>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <zmq.hpp>

#include "codecs/zmq_wire.h"
#include "node/local_training.h"
#include "node/round_carry.h"
#include "node/server_session.h"

namespace edgebed {
namespace {

using Clock = std::chrono::steady_clock;

// A hosted node's fit_ins without the model, and the round's model (params, control) it trains from.
struct HostedFit {
  wire::FitIns ins;
  std::shared_ptr<const wire::FitIns> model;
};

struct SimNode {
  std::string id;
  uint32_t index = 0;
  DeviceProfile profile;
  bool done = false;
  std::optional<std::chrono::steady_clock::time_point> last_join;
  // Digital OTA's quantisation error and SCAFFOLD's c_i, carried across rounds (and restarts).
  std::shared_ptr<RoundCarry> carry;
};

class Host {
 public:
  explicit Host(const NodeHostOptions& o)
      : opt_(o), host_id_("host-" + std::to_string(o.first) + "-" + std::to_string(o.first + o.count - 1)),
        session_(host_id_, o.server, wire::kDefaultMaxFrameBytes * 4, o.reconnect_timeout_s, o.curve), sock_(session_.socket()) {}

  int Run() {
    auto mix = ParseProfileMix(opt_.profiles, "population.profiles", opt_.custom_profiles);
    if (!mix.ok()) return Fatal(mix.status().message());
    auto avail = Availability::Create(opt_.availability, opt_.num_nodes, opt_.seed);
    if (!avail.ok()) return Fatal(avail.status().message());
    availability_ = std::make_unique<Availability>(std::move(avail.value()));
    for (uint32_t i = opt_.first; i < opt_.first + opt_.count; ++i) {
      SimNode n;
      n.id = "node-" + std::to_string(i);
      n.index = i;
      n.profile = AssignProfile(mix.value(), opt_.seed, i);
      n.carry = std::make_shared<RoundCarry>(opt_.state_dir.empty() ? "" : opt_.state_dir + "/" + n.id + ".carry");
      nodes_[n.id] = n;
      SendJoin(nodes_[n.id]);
    }
    spdlog::info("{}: hosting {} simulated nodes ({}), connecting to {}", host_id_, opt_.count, opt_.profiles,
                 opt_.server);

    auto last_heard = std::chrono::steady_clock::now();
    while (std::any_of(nodes_.begin(), nodes_.end(), [](auto& kv) { return !kv.second.done; })) {
      const auto event = session_.Wait(std::chrono::milliseconds(500));
      if (opt_.stop && opt_.stop->load()) {  // a graceful stop: every hosted node leaves
        for (auto& [id, n] : nodes_) {
          if (n.done) continue;
          wire::Envelope bye;
          bye.mutable_leave()->set_reason("stopped by a signal (SIGTERM or SIGINT)");
          Send(id, bye);
        }
        spdlog::info("host: stopped by a signal; {} hosted nodes left the federation", nodes_.size());
        return 0;
      }
      if (event == ServerSession::Event::kLost)
        return Fatal("lost the server " + opt_.server + " and could not reconnect within " +
                     std::to_string(opt_.reconnect_timeout_s) + " s");
      if (event == ServerSession::Event::kReconnected)  // the server may have restarted: every node joins again
        for (auto& [id, n] : nodes_) SendJoin(n);
      if (event != ServerSession::Event::kMessage) {
        if (std::chrono::duration<double>(std::chrono::steady_clock::now() - last_heard).count() > opt_.server_timeout_s)
          return Fatal("server silent for " + std::to_string(opt_.server_timeout_s) + " s");
        continue;
      }
      last_heard = std::chrono::steady_clock::now();
      // Take everything queued: the round's fit_ins for all selected hosted nodes arrive together.
      std::vector<std::pair<std::string, HostedFit>> fits;
      zmq::message_t msg;
      while (sock_.recv(msg, zmq::recv_flags::dontwait)) {
        wire::Envelope in;
        Status st = wire::DecodeFromServer(sock_, msg, wire::kDefaultMaxFrameBytes * 4, &in);
        if (!st.ok()) {
          spdlog::error("host: dropped a frame from the server: {}", st.ToString());
          continue;
        }
        auto it = nodes_.find(in.node());
        if (it == nodes_.end()) {
          spdlog::warn("host: message for '{}', which is not hosted here", in.node());
          continue;
        }
        SimNode& n = it->second;
        if (in.has_join_ack()) {
          if (!in.join_ack().accepted()) return Fatal(n.id + ": join refused: " + in.join_ack().reason());
          if (!learner_ && !Prepare(in.join_ack())) return 1;
          wire::Envelope ready;  // a round-0 heartbeat: data and model are ready
          ready.mutable_heartbeat()->set_round(0);
          Send(n.id, ready);
        } else if (in.has_fit_ins()) {
          wire::FitIns* ins = in.mutable_fit_ins();
          if (!ins->params_as_before()) {  // this round's model: kept for the fit_ins that point back to it
            round_model_ = std::make_shared<wire::FitIns>();
            round_model_->set_round(ins->round());
            round_model_->mutable_params()->Swap(ins->mutable_params());
            round_model_->mutable_control()->Swap(ins->mutable_control());
          } else if (!round_model_ || round_model_->round() != ins->round()) {
            wire::Envelope out;
            out.mutable_error()->set_code(wire::BAD_TENSOR);
            out.mutable_error()->set_message("fit_ins.params_as_before: no fit_ins of round " + std::to_string(ins->round()) +
                                             " carried the model over this connection");
            out.mutable_error()->set_round(ins->round());
            Send(n.id, out);
            continue;
          }
          fits.push_back({n.id, {std::move(*ins), round_model_}});
        } else if (in.has_evaluate_ins()) {
          wire::Envelope out;
          Status e = learner_ ? LocalEvaluate(*learner_, data_, parts_[n.index], in.evaluate_ins(), out.mutable_evaluate_res())
                              : Status::Unavailable("evaluate_ins before join_ack");
          if (!e.ok()) {  // answered, so the server does not wait out its timeout for this node
            out.Clear();
            out.mutable_error()->set_code(FailureCode(e));
            out.mutable_error()->set_message(e.message());
            out.mutable_error()->set_round(in.evaluate_ins().round());
          }
          Send(n.id, out);
        } else if (in.has_shutdown()) {
          wire::Envelope bye;
          bye.mutable_leave()->set_reason("shutdown");
          Send(n.id, bye);
          n.done = true;
        } else if (in.has_error()) {
          spdlog::warn("host: {}: server error {}: {}", n.id, wire::ErrorCode_Name(in.error().code()), in.error().message());
          // The server does not know this node (it restarted, or declared it failed): join again.
          if (in.error().code() == wire::UNKNOWN_NODE) SendJoin(n);
        }
      }
      if (!fits.empty()) TrainBatch(fits);
    }
    spdlog::info("host: all hosted nodes left");
    return 0;
  }

 private:
  int Fatal(const std::string& m) {
    spdlog::error("host: {}", m);
    return 1;
  }

  void SendJoin(SimNode& n) {
    const auto now = std::chrono::steady_clock::now();
    if (n.last_join && now - *n.last_join < std::chrono::seconds(1)) return;  // one join in flight is enough
    n.last_join = now;
    wire::Envelope env;
    auto* j = env.mutable_join();
    j->set_node_id(n.id);
    j->set_node_index(n.index);
    j->set_device("simulated " + n.profile.name + " on " + host_id_);
    j->set_role("trainer");
    ToWire(n.profile, /*simulated=*/true, j->mutable_profile());
    Send(n.id, env);
  }

  void Send(const std::string& node, wire::Envelope& env, const wire::Attachments* att = nullptr) {
    env.set_sender(node);
    env.set_node(node);
    wire::SendEnvelope(sock_, env, "", /*dont_wait=*/false, att);
  }

  bool Prepare(const wire::JoinAck& ack) {
    run_id_ = ack.run_id();
    auto setup = PrepareFromJoinAck(ack, NodeData{opt_.data_dir, ""}, opt_.first, opt_.count);
    if (!setup.ok()) {
      Fatal(setup.status().ToString());
      return false;
    }
    data_ = std::move(setup->data);
    parts_ = std::move(setup->parts);
    learner_ = std::move(setup->learner);
    model_bytes_ = learner_->GetParams().bytes();
    return true;
  }

  // Trains the batch one node at a time and answers in order of virtual completion, as the updates
  // would arrive from real devices. Nodes offline this round answer UNAVAILABLE first. Where every
  // profile predicts its round (FLOP/s or ms per sample), that order is known before training: the
  // nodes train in it and the answers leave kAnswersPerSend at a time, so the host holds that many
  // updates, not one per selected node (sent one by one, the server woke for each while the host
  // trained, and rounds took a third longer). Measured profiles (the host's own training time) hold
  // the answers until the batch is done.
  static constexpr size_t kAnswersPerSend = 64;
  void TrainBatch(const std::vector<std::pair<std::string, HostedFit>>& fits) {
    struct Answer {
      double virtual_s;
      std::string id;
      wire::Envelope env;
      wire::Attachments att;  // the update's data
    };
    std::vector<size_t> order;  // the online nodes, in the order they train
    for (size_t i = 0; i < fits.size(); ++i) {
      const auto& [id, fit] = fits[i];
      if (availability_->Online(nodes_[id].index, fit.ins.round())) {
        order.push_back(i);
        continue;
      }
      wire::Envelope out;
      out.mutable_error()->set_code(wire::UNAVAILABLE);
      out.mutable_error()->set_message(id + " is offline in round " + std::to_string(fit.ins.round()));
      out.mutable_error()->set_round(fit.ins.round());
      Send(id, out);
    }
    auto predicted = [&](size_t i) {
      const SimNode& n = nodes_[fits[i].first];
      return PredictRound(n.profile, model_bytes_, learner_->TrainFlops(), parts_[n.index].size(),
                          fits[i].second.ins.local_epochs()).total_s();
    };
    const bool streamed = std::all_of(order.begin(), order.end(), [&](size_t i) {
      const DeviceProfile& p = nodes_[fits[i].first].profile;
      return p.train_gflops > 0 || p.ms_per_sample > 0;
    });
    if (streamed) {
      std::vector<double> at(fits.size());
      for (size_t i : order) at[i] = predicted(i);
      std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return at[x] < at[y]; });
    }
    std::vector<Answer> held;
    auto last_beat = Clock::now();
    size_t next = 0;
    auto beat = [&](float) {
      if (std::chrono::duration<double>(Clock::now() - last_beat).count() < opt_.heartbeat_s) return true;
      last_beat = Clock::now();
      for (size_t j = next; j < order.size(); ++j) {  // every node still waiting its turn is alive
        wire::Envelope hb;
        hb.mutable_heartbeat()->set_round(fits[order[j]].second.ins.round());
        Send(fits[order[j]].first, hb);
      }
      return true;
    };
    for (; next < order.size(); ++next) {
      const auto& [id, fit] = fits[order[next]];
      SimNode& n = nodes_[id];
      // The node's own fields on the round's model: one full copy at a time.
      wire::FitIns ins = fit.ins;
      ins.set_params_as_before(false);
      *ins.mutable_params() = fit.model->params();
      *ins.mutable_control() = fit.model->control();
      wire::Envelope out;
      wire::Attachments att;
      auto* res = out.mutable_fit_res();
      auto carry = n.carry->Begin(run_id_, ins.round());
      Status st = carry.ok() ? LocalFit(*learner_, data_, parts_[n.index], ins, beat, res, &att, &carry.value()->vq,
                                        &carry.value()->control)
                             : carry.status();
      if (st.ok()) st = n.carry->Commit();
      if (!st.ok()) {  // answered now, so the server does not wait for it
        out.Clear();
        out.mutable_error()->set_code(FailureCode(st));
        out.mutable_error()->set_message(st.message());
        Send(id, out);
        continue;
      }
      VirtualCost c = PredictRound(n.profile, model_bytes_, learner_->TrainFlops(), res->num_samples(),
                                   ins.local_epochs());
      if (n.profile.train_gflops <= 0 && n.profile.ms_per_sample <= 0) {
        c.compute_s = res->train_time_s();
        c.compute_energy_j = n.profile.compute_power_w * c.compute_s;
      }
      res->set_virtual_time_s(c.total_s());
      res->set_compute_energy_j(c.compute_energy_j);
      held.push_back({c.total_s(), id, std::move(out), std::move(att)});
      if (streamed && held.size() >= kAnswersPerSend) {
        for (auto& a : held) Send(a.id, a.env, &a.att);
        held.clear();
      }
    }
    std::stable_sort(held.begin(), held.end(), [](const Answer& a, const Answer& b) { return a.virtual_s < b.virtual_s; });
    for (auto& a : held) Send(a.id, a.env, &a.att);
  }

  NodeHostOptions opt_;
  std::string host_id_;
  ServerSession session_;  // the DEALER to the server; reconnects by itself
  zmq::socket_t& sock_;
  std::map<std::string, SimNode> nodes_;
  std::unique_ptr<Availability> availability_;
  std::string run_id_;
  Dataset data_;
  std::vector<std::vector<uint32_t>> parts_;
  std::unique_ptr<Learner> learner_;
  uint64_t model_bytes_ = 0;
  std::shared_ptr<wire::FitIns> round_model_;  // params and control of the last fit_ins that carried them
};

}  // namespace

int RunNodeHost(const NodeHostOptions& opt) {
  SetTorchThreads(opt.threads);
  try {
    Host h(opt);
    return h.Run();
  } catch (const zmq::error_t& e) {
    spdlog::error("host: ZeroMQ error: {}", e.what());
    return 1;
  }
}

}  // namespace edgebed
