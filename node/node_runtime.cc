#include "node/node_runtime.h"

#include "record/progress.h"

#include <spdlog/spdlog.h>

#include <malloc.h>

#include <chrono>
#include <csignal>
#include <memory>
#include <optional>
#include <zmq.hpp>

#include "codecs/zmq_wire.h"
#include "node/local_training.h"
#include "node/round_carry.h"
#include "node/server_inbox.h"
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
        session_(id_, opt.server, wire::kDefaultMaxFrameBytes * 4, opt.reconnect_timeout_s, opt.curve),
        carry_(opt.state_dir.empty() ? "" : opt.state_dir + "/" + id_ + ".carry"),
        inbox_(session_, {id_, opt.server_timeout_s, wire::kDefaultMaxFrameBytes * 4, opt.stop}, JoinOf(opt, id_)),
        sock_(session_.socket()) {}

  int Run() {
    spdlog::info("{}: connecting to {}", id_, opt_.server);
    inbox_.SendJoin();
    for (;;) {
      wire::Envelope in;
      switch (inbox_.Next(&in)) {
        case ServerInbox::Got::kStop:
          inbox_.Leave("stopped by a signal (SIGTERM or SIGINT)");
          spdlog::info("{}: stopped by a signal; left the federation", id_);
          return 0;
        case ServerInbox::Got::kLost:
        case ServerInbox::Got::kSilent: return 1;
        case ServerInbox::Got::kMessage: break;
      }
      switch (in.body_case()) {
        case wire::Envelope::kJoinAck: {
          if (in.join_ack().has_gnn()) return RunGnnNode(inbox_, id_, in.join_ack(), opt_);  // a GNN shard's own loop
          if (learner_ && in.join_ack().accepted() && in.join_ack().run_id() == run_id_) {
            spdlog::info("{}: joined run {} again", id_, run_id_);  // data and model are still here
          } else if (!OnJoinAck(in.join_ack())) {
            return 1;
          }
          if (in.join_ack().has_split())  // split learning: the node's own loop from here on
            return RunSplitNode(inbox_, id_, in.join_ack(), opt_, std::move(data_), std::move(indices_));
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
        case wire::Envelope::kShutdown:
          spdlog::info("{}: server says shutdown ({}); leaving", id_, wire::Printable(in.shutdown().reason()));
          inbox_.Leave("shutdown");
          return 0;
        case wire::Envelope::kError:
          if (in.error().code() == wire::REJECTED) return 1;
          break;
        default:
          spdlog::warn("{}: ignoring unexpected {} from the server", id_, wire::BodyName(in));
      }
    }
  }

 private:
  static wire::Join JoinOf(const NodeOptions& opt, const std::string& id) {
    wire::Join join;
    join.set_node_id(id);
    join.set_node_index(opt.index);
    join.set_device(opt.device);
    join.set_role("trainer");
    join.mutable_profile()->set_name("measured");  // a real device: its own clock, its own network
    return join;
  }

  bool OnJoinAck(const wire::JoinAck& ack) {
    if (!ack.accepted()) {
      spdlog::error("{}: join refused: {}", id_, wire::Printable(ack.reason()));
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
    decltype(setup->parts)().swap(setup->parts);  // every node's rows: not needed past this point
    malloc_trim(0);  // the heap gives back what planning and loading the data freed
    spdlog::info("{}: joined run {} with {} samples ({} partition), model {}", id_, wire::Printable(ack.run_id()),
                 indices_.size(), wire::Printable(ack.partition()), wire::Printable(ack.model()));
    return true;
  }

  bool Stopping() const { return inbox_.Stopping(); }

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
    Progress shown(fmt::format("{}: round {} training", id_, ins.round()), 1.0, "", 10.0, /*live=*/false);
    auto progress = [&](float done) {
      shown.Update(done);
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
    auto carry = carry_.Begin(run_id_, ins.round());
    wire::Attachments att;  // the update's data, sent beside the Envelope
    Status st = carry.ok() ? LocalFit(*learner_, data_, indices_, ins, progress, out.mutable_fit_res(), &att, &carry.value()->vq,
                                      &carry.value()->control)
                           : carry.status();
    if (st.ok() && !Stopping()) st = carry_.Commit();
    if (Stopping()) return;  // Run() leaves
    if (!st.ok()) return ReplyError(FailureCode(st), st.message(), ins.round());
    wire::SendEnvelope(sock_, out, "", /*dont_wait=*/false, &att);
    malloc_trim(0);  // what this round freed goes back before the next round's model arrives
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
  RoundCarry carry_;  // digital OTA's quantisation error and SCAFFOLD's c_i, carried across rounds
  ServerInbox inbox_;
  zmq::socket_t& sock_;
  std::string run_id_;
  Dataset data_;
  std::vector<uint32_t> indices_;
  std::unique_ptr<Learner> learner_;
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
