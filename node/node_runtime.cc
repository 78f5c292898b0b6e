#include "node/node_runtime.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <csignal>
#include <memory>
#include <optional>
#include <zmq.hpp>

#include "codecs/zmq_wire.h"
#include "node/local_training.h"
#include "node/server_session.h"
#include "node/gnn_node.h"
#include "node/split_node.h"
#include "splitnets/learner.h"

namespace edgebed {
namespace {

using Clock = std::chrono::steady_clock;

class Node {
 public:
  explicit Node(const NodeOptions& opt)
      : opt_(opt), id_(opt.node_id.empty() ? "node-" + std::to_string(opt.index) : opt.node_id),
        session_(id_, opt.server, wire::kDefaultMaxFrameBytes * 4, opt.reconnect_timeout_s, opt.curve), sock_(session_.socket()) {}

  int Run() {
    spdlog::info("{}: connecting to {}", id_, opt_.server);
    SendJoin();
    auto last_heard = Clock::now();
    for (;;) {
      const auto event = session_.Wait(std::chrono::milliseconds(500));
      if (Stopping()) return Leave();
      if (event == ServerSession::Event::kLost) {
        spdlog::error("{}: lost the server {} and could not reconnect within {:.0f} s; giving up", id_, opt_.server,
                      opt_.reconnect_timeout_s);
        return 1;
      }
      if (event == ServerSession::Event::kReconnected) {  // the server may have restarted: join again
        last_join_.reset();
        SendJoin();
      }
      if (event != ServerSession::Event::kMessage) {
        if (std::chrono::duration<double>(Clock::now() - last_heard).count() > opt_.server_timeout_s) {
          spdlog::error("{}: server {} silent for {:.0f} s; giving up", id_, opt_.server, opt_.server_timeout_s);
          return 1;
        }
        continue;
      }
      last_heard = Clock::now();
      zmq::message_t msg;
      if (!sock_.recv(msg)) continue;
      wire::Envelope in;
      Status st = wire::Decode(msg.data(), msg.size(), wire::kDefaultMaxFrameBytes * 4, &in);
      if (!st.ok()) {
        spdlog::error("{}: dropped a frame from the server: {}", id_, st.ToString());
        continue;
      }
      switch (in.body_case()) {
        case wire::Envelope::kJoinAck: {
          if (in.join_ack().has_gnn()) {  // a GNN shard: its own loop from here on
            RestoreDefaultSignals();
            return RunGnnNode(sock_, id_, in.join_ack(), opt_);
          }
          if (learner_ && in.join_ack().accepted() && in.join_ack().run_id() == run_id_) {
            spdlog::info("{}: joined run {} again", id_, run_id_);  // data and model are still here
          } else if (!OnJoinAck(in.join_ack())) {
            return 1;
          }
          if (in.join_ack().has_split()) {  // split learning: the node's own loop from here on
            RestoreDefaultSignals();
            return RunSplitNode(sock_, id_, in.join_ack(), opt_, std::move(data_), std::move(indices_));
          }
          wire::Envelope ready;  // a round-0 heartbeat: data and model are ready
          ready.set_sender(id_);
          ready.mutable_heartbeat()->set_round(0);
          wire::SendEnvelope(sock_, ready);
          break;
        }
        case wire::Envelope::kFitIns:
          OnFit(in.fit_ins());
          break;
        case wire::Envelope::kEvaluateIns:
          OnEvaluate(in.evaluate_ins());
          break;
        case wire::Envelope::kShutdown: {
          spdlog::info("{}: server says shutdown ({}); leaving", id_, in.shutdown().reason());
          wire::Envelope bye;
          bye.set_sender(id_);
          bye.mutable_leave()->set_reason("shutdown");
          wire::SendEnvelope(sock_, bye);
          return 0;
        }
        case wire::Envelope::kError:
          spdlog::error("{}: server error {}: {}", id_, wire::ErrorCode_Name(in.error().code()),
                        in.error().message());
          if (in.error().code() == wire::REJECTED) return 1;
          // The server does not know this node (it restarted, or declared it failed while this
          // process was stopped): join again under the same identity.
          if (in.error().code() == wire::UNKNOWN_NODE) SendJoin();
          break;
        default:
          spdlog::warn("{}: ignoring unexpected {} from the server", id_, wire::BodyName(in));
      }
    }
  }

 private:
  void SendJoin() {
    const auto now = Clock::now();
    if (last_join_ && now - *last_join_ < std::chrono::seconds(1)) return;  // one join in flight is enough
    last_join_ = now;
    wire::Envelope env;
    env.set_sender(id_);
    auto* join = env.mutable_join();
    join->set_node_id(id_);
    join->set_node_index(opt_.index);
    join->set_device(opt_.device);
    join->set_role("trainer");
    join->mutable_profile()->set_name("measured");  // a real device: its own clock, its own network
    wire::SendEnvelope(sock_, env, "", /*dont_wait=*/true);
  }

  bool OnJoinAck(const wire::JoinAck& ack) {
    if (!ack.accepted()) {
      spdlog::error("{}: join refused: {}", id_, ack.reason());
      return false;
    }
    auto setup = PrepareFromJoinAck(ack, NodeData{opt_.data_dir, opt_.partition_file}, opt_.index, 1);
    if (!setup.ok()) {
      spdlog::error("{}: {}", id_, setup.status().ToString());
      return false;
    }
    run_id_ = ack.run_id();
    data_ = std::move(setup->data);
    indices_ = std::move(setup->parts[opt_.index]);
    learner_ = std::move(setup->learner);
    spdlog::info("{}: joined run {} with {} samples ({} partition), model {}", id_, ack.run_id(),
                 indices_.size(), ack.partition(), ack.model());
    return true;
  }

  bool Stopping() const { return opt_.stop && opt_.stop->load(); }

  // The split and GNN loops have no graceful leave: a signal ends them as it always did.
  static void RestoreDefaultSignals() {
    std::signal(SIGTERM, SIG_DFL);
    std::signal(SIGINT, SIG_DFL);
  }

  // A graceful stop (SIGTERM, systemctl stop): the server hears a leave, not a lost connection.
  int Leave() {
    wire::Envelope bye;
    bye.set_sender(id_);
    bye.mutable_leave()->set_reason("stopped by a signal (SIGTERM or SIGINT)");
    wire::SendEnvelope(sock_, bye, "", /*dont_wait=*/true);
    spdlog::info("{}: stopped by a signal; left the federation", id_);
    return 0;
  }

  void ReplyError(wire::ErrorCode code, const std::string& message, uint32_t round) {
    spdlog::error("{}: {}", id_, message);
    wire::Envelope e;
    e.set_sender(id_);
    e.mutable_error()->set_code(code);
    e.mutable_error()->set_message(message);
    e.mutable_error()->set_round(round);
    wire::SendEnvelope(sock_, e);
  }

  void OnFit(const wire::FitIns& ins) {
    if (!learner_) return ReplyError(wire::UNEXPECTED, "fit_ins before join_ack", ins.round());
    auto last_beat = Clock::now();
    const bool crash = ins.crash_mid_round();
    auto progress = [&](float done) {
      if (crash && done >= 0.5f) {
        spdlog::warn("{}: fault injection: killing this process mid-round {}", id_, ins.round());
        spdlog::default_logger()->flush();
        std::raise(SIGKILL);
      }
      if (std::chrono::duration<double>(Clock::now() - last_beat).count() >= opt_.heartbeat_s) {
        last_beat = Clock::now();
        wire::Envelope hb;
        hb.set_sender(id_);
        hb.mutable_heartbeat()->set_round(ins.round());
        hb.mutable_heartbeat()->set_progress(done);
        wire::SendEnvelope(sock_, hb, "", /*dont_wait=*/true);
      }
      return !Stopping();  // a stop ends training now; the half-trained update is not sent
    };
    wire::Envelope out;
    out.set_sender(id_);
    Status st = LocalFit(*learner_, data_, indices_, ins, progress, out.mutable_fit_res(), &vq_, &control_);
    if (Stopping()) return;  // Run() leaves
    if (!st.ok()) return ReplyError(FailureCode(st), st.message(), ins.round());
    wire::SendEnvelope(sock_, out);
    spdlog::info("{}: round {} trained {} samples in {:.2f} s, loss {:.4f}", id_, ins.round(),
                 out.fit_res().num_samples(), out.fit_res().train_time_s(), out.fit_res().train_loss());
  }

  void OnEvaluate(const wire::EvaluateIns& ins) {
    if (!learner_) return ReplyError(wire::UNEXPECTED, "evaluate_ins before join_ack", ins.round());
    wire::Envelope out;
    out.set_sender(id_);
    Status st = LocalEvaluate(*learner_, data_, indices_, ins, out.mutable_evaluate_res());
    if (!st.ok()) return ReplyError(FailureCode(st), st.message(), ins.round());
    wire::SendEnvelope(sock_, out);
  }

  NodeOptions opt_;
  std::string id_;
  ServerSession session_;  // the DEALER to the server; reconnects by itself
  zmq::socket_t& sock_;
  std::optional<Clock::time_point> last_join_;
  std::string run_id_;
  Dataset data_;
  std::vector<uint32_t> indices_;
  std::unique_ptr<Learner> learner_;
  ErrorFeedbackQuantiser vq_;  // digital OTA: this node's quantisation error, carried across rounds
  std::vector<float> control_;  // SCAFFOLD: this node's c_i, carried across rounds
};

}  // namespace

int RunNode(const NodeOptions& opt) {
  SetTorchThreads(opt.threads);
  try {
    Node node(opt);
    return node.Run();
  } catch (const zmq::error_t& e) {
    spdlog::error("node {}: ZeroMQ error: {}", opt.index, e.what());
    return 1;
  }
}

}  // namespace edgebed
