#include "server/server.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <fstream>
#include <map>
#include <numeric>
#include <nlohmann/json.hpp>
#include <set>

#include "channel/uplink.h"
#include "codecs/count_decoder.h"
#include "codecs/rng.h"
#include "codecs/symmetric.h"
#include "codecs/vq.h"
#include "codecs/wire.h"
#include "record/run_record.h"
#include "record/files.h"
#include "server/checkpoint.h"
#include "server/eval_worker.h"
#include "server/node_link.h"
#include "server/registry.h"
#include "server/gnn_service.h"
#include "server/split_service.h"
#include "server/strategy.h"
#include "splitnets/device_profile.h"
#include "splitnets/learner.h"
#include "splitnets/transfer.h"
#include "scenarios/scenario.h"

namespace edgebed {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

namespace {
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// This process's resident set and its peak so far [MB] (Linux /proc).
std::pair<double, double> RssMb() {
  std::ifstream in("/proc/self/status");
  double rss = 0, hwm = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) rss = std::stod(line.substr(6)) / 1024.0;
    if (line.rfind("VmHWM:", 0) == 0) hwm = std::stod(line.substr(6)) / 1024.0;
  }
  return {rss, hwm};
}
}  // namespace

struct Server::Impl final : NodeLink::Handler {
  Scenario sc;
  std::unique_ptr<Learner> learner;
  std::unique_ptr<Strategy> strategy;
  std::unique_ptr<Uplink> uplink;
  Dataset test;
  ParamSet global;
  NodeRegistry registry{1};
  ServerStats stats;
  Rng select_rng;
  std::string run_id;

  NodeLink net;                          // the sockets: frames in and out, connection identity and limits
  std::vector<uint64_t> assigned_samples;  // per node index: its partition's size (caps claimed counts)
  uint32_t first_round = 1;                // > 1 when resumed from a checkpoint
  uint64_t aggregated_rounds = 0;          // rounds (of this process) whose update changed the model
  std::string stop_reason;                 // why the run ended early ("" = it did not)

  // State of the round in progress.
  uint32_t round = 0;
  std::set<std::string> pending;
  std::vector<FitFailure> failures;
  size_t accepted = 0;
  double train_time_max_s = 0.0;
  uint64_t peak_train_bytes_max = 0;  // the most training memory a participant reported this round
  uint64_t kept_for_backward_max = 0;
  double train_loss_sum = 0.0;
  uint64_t samples_sum = 0;
  uint64_t uplink_bytes = 0, downlink_bytes = 0;  // update uploads (fit_res frames) / everything sent
  uint64_t control_bytes = 0;                       // other frames from participants (heartbeats, ...)
  LinkAccounting link;
  std::vector<FitResult> ota_updates;  // a superposing uplink's round: all updates sent at once
  // Digital OTA: the decoder (null: counts known exactly, error-free digital), the URA code the nodes
  // transmit with, the server's own data it fits each round's VQ codebook on, the round's codebook
  // and every answer's indices (what each node's radio sent).
  std::unique_ptr<CountDecoder> decoder;
  std::vector<float> ura_code;
  uint32_t ura_d = 0;
  std::unique_ptr<Learner> proxy_learner;
  Dataset proxy_data;
  uint32_t backbone_crc32 = 0;  // transfer learning: the backbone file every node must have
  std::vector<uint32_t> proxy_indices;
  VqCodebook vq;
  SymmetricOptions symmetric;
  std::vector<std::pair<uint32_t, std::vector<uint32_t>>> vq_answers;  // (node index, indices)
  // Virtual time and energy of the round in progress, and the run's virtual clock.
  double virtual_round_s = 0.0, virtual_clock_s = 0.0;
  double energy_compute_j = 0.0, energy_radio_j = 0.0;
  size_t stragglers = 0, dropouts = 0, over_committed = 0, over_commit_target = 0;
  json ota_info;
  double ota_fit_s = 0.0;
  std::unique_ptr<SplitService> split;  // model slimsplit: split learning instead of federated rounds
  uint32_t infer_pass = 0;             // split inference pass in progress (0 = none)
  std::unique_ptr<GnnService> gnn;     // model gnn: shards train among themselves; the server orders epochs
  std::string gnn_setup_failure;       // a node that could not build its shard (the run cannot start)

  RunRecord record;                 // metrics.jsonl/csv, summary.json: every write checked
  std::mutex record_mu;
  Status record_error;              // the first failed write of a result file (the run stops on it)

  // ---- sending -------------------------------------------------------------------------------
  // Sends to node `to` over the connection that carries it (its own, or its node host's).
  size_t Send(const std::string& to, wire::Envelope& env, const std::string& route = "") {
    env.set_sender("server");
    std::string via = route;
    if (via.empty()) {
      const auto* rec = registry.Find(to);
      via = rec && !rec->route.empty() ? rec->route : to;
    }
    if (via != to) env.set_node(to);
    const size_t n = net.Send(via, env);
    downlink_bytes += n;
    return n;
  }
  void SendError(const std::string& to, wire::ErrorCode code, const std::string& msg) {
    if (to.empty()) return;
    wire::Envelope e;
    e.mutable_error()->set_code(code);
    e.mutable_error()->set_message(msg);
    e.mutable_error()->set_round(round);
    Send(to, e);
  }
  void Fail(const std::string& id, const std::string& reason) {
    if (!pending.erase(id)) return;
    failures.push_back({id, reason});
    if (auto* r = registry.Find(id)) ++r->rounds_failed;
    const auto* rec = registry.Find(id);
    // Simulated populations fail by the dozen every round (that is the point); keep them out of the log.
    spdlog::log(rec && rec->simulated ? spdlog::level::debug : spdlog::level::warn, "round {}: {} failed: {}", round, id,
                reason);
  }

  // ---- receiving -----------------------------------------------------------------------------
  // Waits up to `timeout` for frames and connection events and handles them.
  void PollOnce(std::chrono::milliseconds timeout) { net.Poll(timeout, *this); }

  // A connection closed: every node it carried is gone at once (a pending one has failed), and its
  // index is free for a node that joins again.
  void OnRouteClosed(const std::string& route) override {
    for (const auto& id : registry.ReleaseRoute(route)) {
      const auto* rec = registry.Find(id);
      spdlog::log(rec && rec->simulated ? spdlog::level::debug : spdlog::level::info, "{}: its connection closed", id);
      Fail(id, "its connection closed (process ended or link lost)");
    }
  }

  void OnMessage(const std::string& route, std::vector<zmq::message_t>& parts) override {
    ++stats.frames;
    const std::string& from = route;
    if (parts.size() != 2) {
      ++stats.malformed;
      spdlog::error("dropped a message from '{}': {} frames, a message is exactly one Envelope frame", wire::Printable(from),
                    parts.size() - 1);
      SendError(from, wire::MALFORMED, "a message must be exactly one frame holding one Envelope");
      return;
    }
    const zmq::message_t& payload = parts[1];
    wire::Envelope env;
    Status st = wire::Decode(payload.data(), payload.size(), sc.max_frame_bytes(), &env);
    // A node host carries many nodes on one connection; each message names its node.
    const std::string node = st.ok() && !env.node().empty() ? env.node() : from;
    if (auto* rec = registry.Find(node); rec && rec->route == route) registry.Touch(node, Clock::now());
    if (round > 0 && pending.count(node))
      (st.ok() && env.has_fit_res() ? uplink_bytes : control_bytes) += payload.size();
    if (!st.ok()) {
      wire::ErrorCode code = wire::MALFORMED;
      if (payload.size() > sc.max_frame_bytes()) {
        ++stats.oversize;
        code = wire::OVERSIZE;
      } else if (st.code() == Status::Code::kInvalidArgument) {
        ++stats.bad_version;
        code = wire::BAD_VERSION;
      } else {
        ++stats.malformed;
      }
      spdlog::error("dropped a frame of {} bytes from '{}': {}", payload.size(), wire::Printable(from), st.ToString());
      SendError(from, code, st.message());
      return;
    }
    if (!env.has_join()) {  // a node speaks only over the connection it joined on
      const auto* rec = registry.Find(node);
      if (rec && rec->route != route) {
        ++stats.unknown_node;
        spdlog::error("dropped {} for '{}' from connection '{}': that node joined over '{}'", wire::BodyName(env), node,
                      wire::Printable(route), wire::Printable(rec->route));
        return;
      }
    }
    const std::string& from_node = node;
    if (split && (env.has_fit_res() || env.has_evaluate_res())) {
      ++stats.unexpected;
      spdlog::error("dropped {} from '{}': this run is split learning", wire::BodyName(env), wire::Printable(from_node));
      return SendError(from_node, wire::UNEXPECTED, wire::BodyName(env) + " in a split-learning run (model slimsplit)");
    }
    if (gnn && (env.has_fit_res() || env.has_evaluate_res() || env.has_split_forward() || env.has_split_done())) {
      ++stats.unexpected;
      spdlog::error("dropped {} from '{}': this run is GNN training", wire::BodyName(env), wire::Printable(from_node));
      return SendError(from_node, wire::UNEXPECTED, wire::BodyName(env) + " in a GNN run (model gnn)");
    }
    switch (env.body_case()) {
      case wire::Envelope::kGnnReady: return OnGnnReady(from_node, env.gnn_ready());
      case wire::Envelope::kGnnEpochDone: return OnGnnEpochDone(from_node, env.gnn_epoch_done());
      case wire::Envelope::kSplitForward: return OnSplitForward(from_node, env.split_forward());
      case wire::Envelope::kSplitDone: return OnSplitDone(from_node, env.split_done());
      case wire::Envelope::kSplitInferDone:
        if (KnownAlive(from_node, "split_infer_done") && infer_pass == env.split_infer_done().pass()) pending.erase(from_node);
        return;
      case wire::Envelope::kJoin: return OnJoin(from_node, route, env.join());
      case wire::Envelope::kFitRes: return OnFitRes(from_node, env.fit_res());
      case wire::Envelope::kHeartbeat: return OnHeartbeat(from_node, env.heartbeat());
      case wire::Envelope::kLeave: return OnLeave(from_node, env.leave());
      case wire::Envelope::kEvaluateRes:
        return OnEvaluateRes(from_node, env.evaluate_res());
      case wire::Envelope::kError:
        if (gnn && env.error().code() == wire::REJECTED && registry.Find(from_node)) {
          gnn_setup_failure = from_node + ": " + wire::Printable(env.error().message());
          registry.MarkGone(from_node);
          spdlog::error("{} cannot take its GNN shard: {}", from_node, wire::Printable(env.error().message()));
          return;
        }
        if (env.error().code() == wire::UNAVAILABLE && pending.count(from_node)) {
          ++dropouts;
          return Fail(from_node, "unavailable: " + wire::Printable(env.error().message()));
        }
        spdlog::warn("{} reports error {}: {}", wire::Printable(from_node), wire::ErrorCode_Name(env.error().code()),
                     wire::Printable(env.error().message()));
        return;
      default:
        ++stats.unexpected;
        spdlog::error("dropped {} from '{}': nodes do not send that", wire::BodyName(env), wire::Printable(from_node));
        SendError(from_node, wire::UNEXPECTED, wire::BodyName(env) + " is a server-to-node message");
    }
  }

  bool KnownAlive(const std::string& from, const char* what) {
    auto* rec = registry.Find(from);
    if (rec && rec->alive) return true;
    ++stats.unknown_node;
    spdlog::error("dropped {} from '{}': that node has not joined", what, wire::Printable(from));
    SendError(from, wire::UNKNOWN_NODE, std::string(what) + " from a node that has not joined; send join first");
    return false;
  }

  void OnJoin(const std::string& from, const std::string& route, const wire::Join& j) {
    wire::Envelope out;
    auto* ack = out.mutable_join_ack();
    Status st = from == j.node_id()
                    ? registry.Join(from, route, j.node_index(), j.device(), Clock::now())
                    : Status::InvalidArgument("join.node_id '" + wire::Printable(j.node_id()) + "' differs from the identity '" +
                                              wire::Printable(from) + "'");
    if (!st.ok()) {
      ++stats.rejected_joins;
      spdlog::error("refused join from '{}': {}", wire::Printable(from), wire::Printable(st.message(), 400));
      ack->set_accepted(false);
      ack->set_reason(st.message());
      Send(from, out, route);
      return;
    }
    NodeRecord* rec = registry.Find(from);
    rec->simulated = j.profile().simulated();
    rec->profile = FromWire(j.profile());
    rec->num_samples = j.num_samples();
    ack->set_accepted(true);
    ack->set_run_id(run_id);
    ack->set_model(sc.model);
    ack->set_dataset(sc.dataset);
    ack->set_partition(sc.partition);
    ack->set_dirichlet_alpha(sc.dirichlet_alpha);
    ack->set_shards_per_node(sc.shards_per_node);
    ack->set_num_nodes(sc.nodes);
    ack->set_seed(sc.seed);
    ack->set_train_limit(sc.train_limit);
    for (int c : sc.classes) ack->add_classes(static_cast<uint32_t>(c));
    if (sc.transfer.backbone.size()) {
      auto* t = ack->mutable_transfer();
      t->set_backbone(sc.transfer.backbone);
      t->set_backbone_crc32(backbone_crc32);
      t->set_mode(sc.transfer.mode);
      t->set_blocks(static_cast<uint32_t>(sc.transfer.blocks));
      t->set_memory_budget_kb(sc.transfer.memory_budget_kb);
      t->set_batch_size(sc.batch_size);
      t->set_momentum(sc.momentum > 0.0);
    }
    if (split) split->FillJoinAck(ack);
    if (gnn) gnn->FillJoinAck(j.node_index(), ack);
    Send(from, out);
    if (!rec->simulated || registry.alive_count() % 100 == 0 || registry.alive_count() == sc.nodes)
      spdlog::info("{} joined (index {}, {}); {} of {} nodes", from, j.node_index(), wire::Printable(j.device()),
                   registry.alive_count(), sc.nodes);
  }

  // ---- GNN training ------------------------------------------------------------------------------
  bool GnnExpected(const std::string& from, const char* what) {
    if (!KnownAlive(from, what)) return false;
    if (gnn) return true;
    ++stats.unexpected;
    spdlog::error("dropped {} from '{}': this run is not GNN training", what, from);
    SendError(from, wire::UNEXPECTED, std::string(what) + " in a run without model gnn");
    return false;
  }

  void OnGnnReady(const std::string& from, const wire::GnnReady& r) {
    if (!GnnExpected(from, "gnn_ready")) return;
    NodeRecord* rec = registry.Find(from);
    if (Status st = gnn->OnReady(rec->index, r); !st.ok()) {
      ++stats.bad_tensor;
      spdlog::error("refused gnn_ready from {}: {}", from, st.message());
      return SendError(from, wire::BAD_TENSOR, st.message());
    }
    rec->ready = true;
    pending.erase(from);
  }

  void OnGnnEpochDone(const std::string& from, const wire::GnnEpochDone& d) {
    if (!GnnExpected(from, "gnn_epoch_done")) return;
    if (!pending.count(from)) {
      ++stats.unexpected;
      spdlog::error("dropped gnn_epoch_done (epoch {}) from '{}': it has no epoch in progress", d.epoch(), from);
      return SendError(from, wire::UNEXPECTED, "gnn_epoch_done outside the node's epoch");
    }
    if (Status st = gnn->OnEpochDone(registry.Find(from)->index, round, d); !st.ok()) {
      ++stats.bad_tensor;
      SendError(from, wire::BAD_TENSOR, st.message());
      return Fail(from, "refused its epoch report: " + st.message());
    }
    pending.erase(from);
    ++accepted;
  }

  // ---- split learning ----------------------------------------------------------------------------
  bool SplitExpected(const std::string& from, const std::string& what) {
    if (!KnownAlive(from, what.c_str())) return false;
    if (split && pending.count(from)) return true;
    ++stats.unexpected;
    spdlog::error("dropped {} from '{}': {}", what, from, split ? "it has no round or inference pass in progress" : "this run is not split learning");
    SendError(from, wire::UNEXPECTED, what + (split ? " outside the node's round or inference pass" : " in a run without model slimsplit"));
    return false;
  }

  void OnSplitForward(const std::string& from, const wire::SplitForward& f) {
    if (!SplitExpected(from, "split_forward")) return;
    wire::Envelope out;
    Status st = (f.request() > 0) == (infer_pass > 0) && f.round() == (infer_pass > 0 ? infer_pass : round)
                    ? split->OnForward(registry.Find(from)->index, f, out.mutable_split_backward())
                    : Status::InvalidArgument("split_forward.round = " + std::to_string(f.round()) + " (request " +
                                              std::to_string(f.request()) + ") is not the " +
                                              (infer_pass > 0 ? "inference pass " + std::to_string(infer_pass)
                                                              : "round " + std::to_string(round)) + " in progress");
    if (!st.ok()) {
      ++stats.bad_tensor;
      spdlog::error("refused split_forward from {}: {}", from, st.message());
      return SendError(from, wire::BAD_TENSOR, st.message());
    }
    Send(from, out);
  }

  void OnSplitDone(const std::string& from, const wire::SplitDone& d) {
    if (!SplitExpected(from, "split_done")) return;
    Status st = split->OnDone(registry.Find(from)->index, round, d);
    if (!st.ok()) {
      ++stats.bad_tensor;
      SendError(from, wire::BAD_TENSOR, st.message());
      return Fail(from, st.message());
    }
    pending.erase(from);
    ++accepted;
  }

  // Waits for every pending node to finish, until `deadline`, failing those silent for longer than
  // the liveness timeout and, at the end, those still pending.
  // `first_failure`: return as soon as one node has failed (GNN shards need each other).
  void AwaitPending(Clock::time_point deadline, bool first_failure = false) {
    while (!pending.empty() && Clock::now() < deadline && !stop_flag->load() && !(first_failure && !failures.empty())) {
      PollOnce(std::chrono::milliseconds(200));
      const auto now = Clock::now();
      std::vector<std::string> silent;
      for (const auto& id : pending) {
        const auto* rec = registry.Find(id);
        if (std::chrono::duration<double>(now - rec->last_seen).count() > sc.liveness_timeout_s) silent.push_back(id);
      }
      for (const auto& id : silent) {
        registry.MarkGone(id);
        Fail(id, fmt::format("silent for more than server.liveness_timeout_s = {:g}", sc.liveness_timeout_s) +
                     " s (process died or link lost)");
      }
    }
    if (first_failure && !failures.empty()) return;
    if (stop_flag->load()) {  // a stop is no node's failure: the round simply ends unfinished
      pending.clear();
      return;
    }
    for (const auto& id : std::vector<std::string>(pending.begin(), pending.end()))
      Fail(id, "missed the round deadline of " + std::to_string(sc.round_deadline_s) + " s");
  }

  Clock::time_point DeadlineFrom(Clock::time_point t0) const {
    return t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(sc.round_deadline_s));
  }

  // The state every kind of round starts from.
  void BeginRound(uint32_t r) {
    round = r;
    failures.clear();
    pending.clear();
    accepted = 0;
  }

  void RunSplitRound(uint32_t r, Clock::time_point run_start) {
    const auto t0 = Clock::now();
    BeginRound(r);
    downlink_bytes = 0;
    for (const auto& id : registry.AliveIds()) {
      if (!registry.Find(id)->ready) continue;
      wire::Envelope env;
      split->MakeRound(r, registry.Find(id)->index, env.mutable_split_round());
      if (Send(id, env) == 0) {
        failures.push_back({id, "could not send split_round: the node's connection is gone"});
        registry.MarkGone(id);
        continue;
      }
      pending.insert(id);
      registry.Touch(id, Clock::now());
    }
    const size_t selected = pending.size() + failures.size();
    AwaitPending(DeadlineFrom(t0));
    json row = split->EndRound(r, r == sc.rounds || stop_flag->load());
    json failed = json::array();
    for (const auto& f : failures) failed.push_back({{"node", f.node_id}, {"reason", f.reason}});
    row["selected"] = selected;
    row["failures"] = failures.size();
    row["failed_nodes"] = failed;
    row["downlink_bytes"] = downlink_bytes;
    row["wall_s"] = Since(t0);
    row["elapsed_s"] = Since(run_start);
    WriteRow(row);
    std::string widths;
    for (const auto& [w, a] : row["accuracy_by_width"].items()) widths += fmt::format(" {}:{:.4f}", w, a.get<double>());
    spdlog::info("round {:>3}/{}: accuracy by width{}  participants {}/{}  BER {:.2e}  {:.1f} s", r, sc.rounds, widths,
                 row["participants"].get<size_t>(), selected, row["bottleneck_ber"].get<double>(), row["wall_s"].get<double>());
  }

  // Inference passes on the lowest-index ready node: the scenario's controller, then (compare_fixed)
  // the fixed width over the same trace.
  json RunSplitInference() {
    const auto& inf = sc.split.inference;
    std::vector<std::string> passes = {inf.controller};
    if (inf.compare_fixed && inf.controller == "adaptive") passes.push_back("fixed");
    std::string server_node;
    uint32_t best = UINT32_MAX;
    for (const auto& id : registry.AliveIds())
      if (registry.Find(id)->ready && registry.Find(id)->index < best) best = registry.Find(id)->index, server_node = id;
    if (server_node.empty()) {
      spdlog::error("split inference: no node is alive to serve requests");
      return nullptr;
    }
    for (size_t p = 0; p < passes.size() && !stop_flag->load(); ++p) {
      infer_pass = static_cast<uint32_t>(p + 1);
      failures.clear();
      pending = {server_node};
      wire::Envelope env;
      split->MakeInference(infer_pass, passes[p], env.mutable_split_infer_ins());
      spdlog::info("split inference pass {}: {} serves {} requests, controller {}", infer_pass, server_node, inf.requests,
                   passes[p]);
      registry.Touch(server_node, Clock::now());
      if (Send(server_node, env) == 0) pending.clear();
      AwaitPending(DeadlineFrom(Clock::now()));
      for (const auto& f : failures) spdlog::error("split inference pass {}: {} failed: {}", infer_pass, f.node_id, f.reason);
    }
    infer_pass = 0;
    return split->EndInference(sc.output_dir);
  }

  // A heartbeat for round 0 says the node has prepared its data and model after join_ack.
  void OnHeartbeat(const std::string& from, const wire::Heartbeat& hb) {
    if (!KnownAlive(from, "heartbeat")) return;
    if (hb.round() == 0) registry.Find(from)->ready = true;
  }

  // Federated evaluation (Flower's configure_evaluate / aggregate_evaluate): the round's participants
  // evaluate the new global model on their own data; the server takes the sample-weighted mean.
  std::set<std::string> eval_pending;
  double eval_loss_sum = 0.0, eval_correct = 0.0;
  uint64_t eval_samples = 0;

  void OnEvaluateRes(const std::string& from, const wire::EvaluateRes& res) {
    if (!KnownAlive(from, "evaluate_res")) return;
    if (res.round() != round || !eval_pending.erase(from)) {
      ++stats.unexpected;
      spdlog::warn("dropped evaluate_res for round {} from {}: not asked for", res.round(), from);
      return;
    }
    if (!std::isfinite(res.loss()) || !(res.accuracy() >= 0.0f && res.accuracy() <= 1.0f)) {
      ++stats.bad_tensor;
      SendError(from, wire::BAD_TENSOR, "evaluate_res.loss must be finite and evaluate_res.accuracy in [0, 1]");
      return;
    }
    eval_loss_sum += res.loss() * static_cast<double>(res.num_samples());
    eval_correct += res.accuracy() * static_cast<double>(res.num_samples());
    eval_samples += res.num_samples();
  }

  json FederatedEvaluate(uint32_t r, const std::vector<std::string>& nodes) {
    eval_pending.clear();
    eval_loss_sum = eval_correct = 0.0;
    eval_samples = 0;
    wire::Envelope ins;
    ins.mutable_evaluate_ins()->set_round(r);
    wire::ToTensors(global, ins.mutable_evaluate_ins()->mutable_params());
    for (const auto& id : nodes)
      if (Send(id, ins) > 0) eval_pending.insert(id);
    const size_t asked = eval_pending.size();
    const auto t0 = Clock::now();
    while (!eval_pending.empty() && Since(t0) < sc.liveness_timeout_s) PollOnce(std::chrono::milliseconds(100));
    json out = {{"asked", asked}, {"answered", asked - eval_pending.size()}, {"samples", eval_samples}};
    if (eval_samples > 0) {
      out["accuracy"] = eval_correct / static_cast<double>(eval_samples);
      out["loss"] = eval_loss_sum / static_cast<double>(eval_samples);
    }
    eval_pending.clear();
    return out;
  }

  void OnLeave(const std::string& from, const wire::Leave& l) {
    if (!KnownAlive(from, "leave")) return;
    registry.MarkGone(from);
    Fail(from, "left the federation: " + wire::Printable(l.reason()));
    const auto* rec = registry.Find(from);
    spdlog::log(rec && rec->simulated ? spdlog::level::debug : spdlog::level::info, "{} left: {}", from,
                wire::Printable(l.reason()));
  }

  void OnFitRes(const std::string& from, const wire::FitRes& res) {
    if (!KnownAlive(from, "fit_res")) return;
    if (res.round() != round || !pending.count(from)) {
      ++stats.unexpected;
      spdlog::warn("dropped fit_res for round {} from {}: {}", res.round(), from,
                   res.round() != round ? "not the current round " + std::to_string(round)
                                        : std::string("not selected or already answered"));
      return;
    }
    FitResult r;
    r.node_id = from;
    r.node_index = registry.Find(from)->index;
    r.num_samples = res.num_samples();
    r.train_loss = res.train_loss();
    r.train_time_s = res.train_time_s();
    r.peak_train_bytes = res.peak_train_bytes();
    r.kept_for_backward_bytes = res.kept_for_backward_bytes();
    // Digital OTA answers carry VQ indices (the channel superposes them when the round closes);
    // every other uplink takes the update itself.
    const bool vq_answer = uplink->carries_codewords() || res.vq_indices_size() > 0;
    Status st = vq_answer ? CheckVqIndices(res) : wire::FromTensors(res.update(), "fit_res.update", &global.specs, &r.update);
    if (!st.ok()) return RejectUpdate(from, st.message());
    if (!std::isfinite(r.train_time_s) || r.train_time_s < 0 || r.num_samples == 0)
      return RejectUpdate(from, "fit_res.num_samples must be >= 1 and fit_res.train_time_s finite and >= 0");
    if (r.node_index < assigned_samples.size() && r.num_samples > assigned_samples[r.node_index]) {
      // FedAvg weights by this count: a node may not claim more samples than its partition holds.
      ++stats.capped_samples;
      spdlog::warn("round {}: {} claims fit_res.num_samples = {}, its partition holds {}; counted as {}", round, from,
                   r.num_samples, assigned_samples[r.node_index], assigned_samples[r.node_index]);
      r.num_samples = assigned_samples[r.node_index];
    }
    if (!vq_answer && res.aggregate_of_size() > 0) return OnRelayedAggregate(from, res, std::move(r));
    if (over_commit_target > 0 && accepted >= over_commit_target) {
      ++over_committed;
      return Fail(from, "over-committed: the round already has its " + std::to_string(over_commit_target) + " updates");
    }
    if (!std::isfinite(res.virtual_time_s()) || res.virtual_time_s() < 0)
      return RejectUpdate(from, "fit_res.virtual_time_s must be finite and >= 0");
    r.virtual_s = res.virtual_time_s();
    energy_compute_j += res.compute_energy_j();
    if (vq_answer) {
      if (!OnTime(from, res, &r)) return;
      vq_answers.push_back({r.node_index, std::vector<uint32_t>(res.vq_indices().begin(), res.vq_indices().end())});
    } else if (res.link_size() > 0) {
      // Carried by a channel process already: restore its erasures, take its report.
      st = ApplyErasures(res, &r.update.flat);
      if (!st.ok()) return RejectUpdate(from, st.message());
      for (const auto& l : res.link()) AddReport(l);
      link.channel_uses += res.link(0).channel_uses();
      link.airtime_s += res.link(0).airtime_s();
      if (!OnTime(from, res, &r)) return;
      st = strategy->Accumulate(r);
      if (!st.ok()) return Fail(from, "update lost: " + st.message());
    } else if (uplink->superposes()) {
      if (!OnTime(from, res, &r)) return;  // the shared airtime is added when the round closes
      ota_updates.push_back(std::move(r));  // transmitted all at once when the round closes
      return Answered(from, ota_updates.back());
    } else {
      st = uplink->Carry(r.node_index, round, &r.update.flat, res.ByteSizeLong(), &link);
      if (!st.ok()) return Fail(from, "update lost: " + st.message());
      if (!OnTime(from, res, &r)) return;
      st = strategy->Accumulate(r);
      if (!st.ok()) return Fail(from, "update lost: " + st.message());
    }
    Answered(from, r);
  }

  // A refused update: counted, logged, answered BAD_TENSOR naming the field, and the node's round failed.
  void RejectUpdate(const std::string& from, const std::string& m) {
    ++stats.bad_tensor;
    spdlog::error("rejected the update of {}: {}", from, m);
    SendError(from, wire::BAD_TENSOR, m);
    Fail(from, "bad update: " + m);
  }

  // Digital OTA: the answer is one VQ index per block of this round's codebook, and no update.
  Status CheckVqIndices(const wire::FitRes& res) const {
    if (!uplink->carries_codewords())
      return Status::InvalidArgument("fit_res.vq_indices is for channel.uplink = digital_ota; this run's uplink takes fit_res.update");
    if (res.update_size() > 0) return Status::InvalidArgument("digital OTA: answer with fit_res.vq_indices, not fit_res.update");
    if (vq.block_length == 0 || vq.size == 0) return Status::InvalidArgument("digital OTA: the server has no codebook this round");
    const size_t blocks = NumBlocks(global.flat.size(), vq.block_length);
    if (static_cast<size_t>(res.vq_indices_size()) != blocks)
      return Status::InvalidArgument("fit_res.vq_indices holds " + std::to_string(res.vq_indices_size()) +
                                     " indices, expected " + std::to_string(blocks) + " (one per block of " +
                                     std::to_string(vq.block_length) + " of the model's " +
                                     std::to_string(global.flat.size()) + " values)");
    for (uint32_t i : res.vq_indices())
      if (i >= vq.size)
        return Status::InvalidArgument("fit_res.vq_indices holds " + std::to_string(i) + ", allowed [0, " +
                                       std::to_string(vq.size - 1) + "]");
    return Status::Ok();
  }

  // Fits this round's VQ codebook (k-means++) on the server's own update: one local round on its
  // proxy samples from the global model, as a node would train.
  Status FitRoundCodebook(uint32_t r) {
    EDGEBED_RETURN_IF_ERROR(proxy_learner->SetParams(global));
    TrainOptions t;
    t.epochs = static_cast<int>(sc.local_epochs);
    t.batch_size = static_cast<int>(sc.batch_size);
    t.learning_rate = static_cast<float>(sc.learning_rate);
    t.momentum = static_cast<float>(sc.momentum);
    t.seed = DeriveSeed(sc.seed, "vq-proxy-train", r);
    proxy_learner->Train(proxy_data, proxy_indices, t);
    ParamSet upd = proxy_learner->GetParams();
    for (size_t i = 0; i < upd.flat.size(); ++i) upd.flat[i] -= global.flat[i];
    KMeansOptions k;
    k.size = sc.ota.codebook_size;
    k.block_length = sc.ota.block_length;
    k.iterations = sc.ota.kmeans_iterations;
    Rng rng = MakeRng(sc.seed, "vq-kmeans", r);
    auto q = FitCodebook(upd.flat.data(), upd.flat.size(), k, rng);
    if (!q.ok()) return q.status();
    vq = std::move(q.value());
    return Status::Ok();
  }

  // All of the round's codewords cross the channel at once; the decoder recovers the count vector
  // of every block and the symmetric function of the nodes' quantised updates follows from it.
  void DigitalOtaRound() {
    const auto t0 = Clock::now();
    std::vector<UraInput> in;
    for (const auto& [node, idx] : vq_answers) in.push_back({node, &idx});
    UraCode code{&ura_code, vq.size, ura_d, static_cast<uint32_t>(std::ceil(std::log2(static_cast<double>(vq.size))))};
    auto rx = uplink->SuperposeCodewords(round, in, code, &link);
    if (!rx.ok()) {
      spdlog::warn("round {}: {}", round, rx.status().message());
      accepted = 0;
      ota_info = {{"active", 0}};
      return;
    }
    const size_t N = global.flat.size(), S = NumBlocks(N, vq.block_length), n = vq.size;
    // What the channel summed, known to the simulation (never to the decoder): the true counts.
    std::vector<int32_t> truth(S * n, 0);
    std::set<uint32_t> active(rx->active_nodes.begin(), rx->active_nodes.end());
    for (const auto& [node, idx] : vq_answers)
      if (active.count(node))
        for (size_t s = 0; s < S; ++s) ++truth[s * n + idx[s]];
    const uint32_t ka = static_cast<uint32_t>(active.size());
    std::vector<int32_t> counts = truth;
    std::vector<float> soft;  // the decoder's estimate before rounding (mean with ota.soft_mean)
    uint32_t k_hat = ka;
    ota_info = {{"active", ka}, {"decoder", decoder ? decoder->name() : "exact"}, {"noise_var", rx->noise_var},
                {"rho0_w", rx->rho0}, {"blocks", S}};
    if (decoder) {
      CountProblem p;
      p.y = rx->y.data();
      p.blocks = S;
      p.noise_var = rx->noise_var;
      p.k_max = static_cast<uint32_t>(vq_answers.size());
      p.popularity = vq.popularity.data();
      auto est = decoder->Decode(p);
      if (!est.ok()) {
        spdlog::error("round {}: decoding failed: {}", round, est.status().message());
        accepted = 0;
        return;
      }
      counts = std::move(est->counts);
      soft = std::move(est->raw);
      k_hat = est->k_hat;
      double err = 0, ref = 0;
      size_t exact = 0;
      for (size_t s = 0; s < S; ++s) {
        bool same = true;
        for (size_t i = 0; i < n; ++i) {
          const double e = counts[s * n + i] - truth[s * n + i];
          err += e * e;
          ref += static_cast<double>(truth[s * n + i]) * truth[s * n + i];
          same &= e == 0;
        }
        exact += same;
      }
      ota_info["k_hat"] = est->k_hat;
      ota_info["count_nmse"] = ref > 0 ? err / ref : 0.0;
      ota_info["exact_blocks"] = static_cast<double>(exact) / static_cast<double>(S);
      ota_info["decode_s"] = est->seconds;
      ota_info["decode_gflop"] = est->flops / 1e9;
    }
    FitResult agg;
    agg.node_id = "ota-aggregate";
    agg.update.specs = global.specs;
    agg.update.flat.resize(N);
    Status st = Status::Ok();
    if (symmetric.fn == SymmetricFn::kMean && sc.ota.soft_mean && !soft.empty())
      MeanFromSoftCounts(vq, soft.data(), k_hat, N, agg.update.flat.data());
    else
      st = AggregateCounts(vq, counts.data(), N, symmetric, agg.update.flat.data());
    if (st.ok() && decoder) {  // how far the decoded aggregate is from the error-free one
      std::vector<float> ideal(N);
      (void)AggregateCounts(vq, truth.data(), N, symmetric, ideal.data());
      double e = 0, r0 = 0;
      for (size_t i = 0; i < N; ++i) {
        e += (agg.update.flat[i] - ideal[i]) * static_cast<double>(agg.update.flat[i] - ideal[i]);
        r0 += static_cast<double>(ideal[i]) * ideal[i];
      }
      ota_info["aggregate_nmse"] = r0 > 0 ? e / r0 : 0.0;
    }
    agg.num_samples = std::max<uint32_t>(1, ka);
    if (st.ok()) st = strategy->Accumulate(agg);
    if (!st.ok()) spdlog::error("round {}: {}", round, st.ToString());
    virtual_round_s += link.airtime_s;
    if (!sc.ota.collect.empty()) {
      CountRound cr;
      cr.round = round;
      cr.nodes = static_cast<uint32_t>(vq_answers.size());
      cr.blocks = static_cast<uint32_t>(S);
      cr.block_length = vq.block_length;
      cr.popularity = vq.popularity;
      cr.centroids = vq.centroids;
      for (const auto& [node, idx] : vq_answers)
        for (uint32_t i : idx) cr.indices.push_back(static_cast<uint16_t>(i));
      Status cs = n <= 65536 ? AppendCountRound(sc.ota.collect, vq.size, cr) : Status::InvalidArgument("codebook too large");
      if (!cs.ok()) spdlog::error("ota.collect: {}", cs.message());
    }
    ota_info["ota_s"] = Since(t0);
    vq_answers.clear();
  }

  // Virtual time: the node's own seconds (download + training) plus its upload, which is the
  // channel's airtime where the channel models it, else bits over the profile's uplink rate. An
  // update completing after server.virtual_deadline_s is a straggler's and is not aggregated.
  bool OnTime(const std::string& from, const wire::FitRes& res, FitResult* r) {
    NodeRecord* rec = registry.Find(from);
    if (rec) rec->num_samples = res.num_samples();  // what selection predicts with from now on
    double upload_s = 0.0, radio_j = 0.0;
    auto it = link.per_node.find(r->node_index);
    if (it != link.per_node.end() && it->second.airtime_s > 0) {
      upload_s = it->second.airtime_s;
      radio_j = it->second.tx_energy_j;
    } else if (rec && rec->profile.uplink_bps > 0) {
      upload_s = static_cast<double>(res.ByteSizeLong()) * 8.0 / rec->profile.uplink_bps;
      radio_j = rec->profile.tx_power_w * upload_s;
    }
    energy_radio_j += radio_j;
    r->virtual_s += upload_s;
    if (sc.virtual_deadline_s > 0 && r->virtual_s > sc.virtual_deadline_s) {
      ++stragglers;
      Fail(from, "straggler: done at virtual " + std::to_string(r->virtual_s) + " s, after server.virtual_deadline_s = " +
                     std::to_string(sc.virtual_deadline_s) + " s");
      return false;
    }
    return true;
  }

  std::vector<std::string> answered_ids;  // this round's participants, in order of answer
  void Answered(const std::string& id, const FitResult& r) {
    pending.erase(id);
    answered_ids.push_back(id);
    ++accepted;
    virtual_round_s = std::max(virtual_round_s, r.virtual_s);
    if (auto* rec = registry.Find(id)) {
      ++rec->rounds_ok;
      rec->num_samples = r.num_samples;
    }
    train_time_max_s = std::max(train_time_max_s, r.train_time_s);
    peak_train_bytes_max = std::max(peak_train_bytes_max, r.peak_train_bytes);
    kept_for_backward_max = std::max(kept_for_backward_max, r.kept_for_backward_bytes);
    train_loss_sum += r.train_loss * static_cast<double>(r.num_samples);
    samples_sum += r.num_samples;
  }

  void AddReport(const wire::LinkReport& l) { link.AddNode(l.node_index(), FromLinkReport(l)); }

  // fit_res.erased: [start, end) pairs of values the channel lost; they become NaN (erasures).
  static Status ApplyErasures(const wire::FitRes& res, std::vector<float>* v) {
    if (res.erased_size() % 2 != 0) return Status::InvalidArgument("fit_res.erased must hold [start, end) pairs");
    for (int i = 0; i < res.erased_size(); i += 2) {
      const uint64_t lo = res.erased(i), hi = res.erased(i + 1);
      if (lo >= hi || hi > v->size())
        return Status::InvalidArgument("fit_res.erased range [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                       ") is outside [0, " + std::to_string(v->size()) + "]");
      std::fill(v->begin() + static_cast<std::ptrdiff_t>(lo), v->begin() + static_cast<std::ptrdiff_t>(hi), NAN);
    }
    return Status::Ok();
  }

  // Analog OTA through a channel process: one update standing for several selected nodes.
  void OnRelayedAggregate(const std::string& from, const wire::FitRes& res, FitResult r) {
    for (const auto& id : res.aggregate_of()) {
      if (!pending.count(id)) {
        ++stats.unexpected;
        spdlog::error("dropped an OTA aggregate from {}: {} is not waiting for round {}", from, id, round);
        return SendError(from, wire::UNEXPECTED, "fit_res.aggregate_of names " + id + ", not selected or already answered");
      }
    }
    for (const auto& l : res.link()) AddReport(l);
    link.channel_uses += res.ota_channel_uses();
    link.airtime_s += res.ota_airtime_s();
    link.control_bits += res.ota_control_bits();
    ota_info = {{"active", res.ota_active()}, {"via", "channel process"}};
    if (res.ota_active() > 0) {
      r.num_samples = res.ota_active();
      Status st = strategy->Accumulate(r);
      if (!st.ok()) spdlog::error("round {}: OTA aggregate: {}", round, st.ToString());
    }
    FitResult each = r;
    each.num_samples = res.num_samples() / static_cast<uint64_t>(res.aggregate_of_size());
    for (const auto& id : res.aggregate_of()) Answered(id, each);
  }

  // What selection knows of each available node: predicted virtual completion from its profile,
  // and its expected channel gain this round.
  std::vector<Candidate> Candidates(uint32_t r) {
    std::vector<Candidate> out;
    const uint64_t model_bytes = global.bytes();
    const uint64_t avg_samples = (sc.train_limit ? sc.train_limit : 60000) / std::max<uint32_t>(1, sc.nodes);
    for (const auto& id : registry.AliveIds()) {
      const NodeRecord* rec = registry.Find(id);
      const DeviceProfile& p = rec->profile;
      const VirtualCost c = PredictRound(p, model_bytes, learner->TrainFlops(),
                                         rec->num_samples ? rec->num_samples : avg_samples, sc.local_epochs);
      const double upload_s = p.uplink_bps > 0 ? static_cast<double>(model_bytes) * 8.0 / p.uplink_bps : 0.0;
      out.push_back({id, c.total_s() + upload_s, uplink->ExpectedGain(rec->index, r)});
    }
    return out;
  }

  // All accepted updates cross the superposing channel together; the strategy sees one update, the
  // channel's estimate of their mean, weighted by the number of nodes that transmitted.
  void SuperposeRound() {
    std::vector<OtaInput> in;
    for (const auto& r : ota_updates) in.push_back({r.node_index, &r.update.flat});
    auto out = uplink->Superpose(round, in, &link);
    if (!out.ok()) {
      spdlog::warn("round {}: {}", round, out.status().message());
      accepted = 0;  // nothing reached the server
      ota_info = {{"active", 0}};
      return;
    }
    const OtaOutput& o = out.value();
    virtual_round_s += link.airtime_s;  // all transmit together once the last has trained
    ota_info = {{"active", o.active},
                {"rho0_w", o.rho0},
                {"noise_w", o.noise_power},
                {"expected_mse", o.scale * o.scale * o.noise_power / (o.rho0 * o.active * o.active)}};
    FitResult agg;
    agg.node_id = "ota-aggregate";
    agg.update.specs = global.specs;
    agg.update.flat = o.mean;
    agg.num_samples = o.active;
    Status st = strategy->Accumulate(agg);
    if (!st.ok()) spdlog::error("round {}: {}", round, st.ToString());
    ota_updates.clear();
  }

  json LinkJson() const {
    json nodes = json::array();
    for (const auto& [k, s] : link.per_node)
      nodes.push_back({{"node", k}, {"snr_db", s.snr_db}, {"payload_bits", s.payload_bits}, {"coded_bits", s.coded_bits},
                       {"channel_uses", s.channel_uses}, {"airtime_s", s.airtime_s}, {"tx_energy_j", s.tx_energy_j},
                       {"packets", s.packets}, {"lost_packets", s.lost_packets},
                       {"retransmissions", s.retransmissions}, {"active", s.active}});
    return nodes;
  }

  // ---- the run -------------------------------------------------------------------------------
  void WaitForNodes() {
    const auto t0 = Clock::now();
    spdlog::info("waiting up to {:.0f} s for {} nodes on {}", sc.join_timeout_s, sc.nodes, net.endpoint());
    // Round 1 starts once every node has joined and prepared its data (so that the liveness clock,
    // which starts at fit_ins, never counts a node's data loading), or at the join timeout.
    while (registry.ready_count() < sc.nodes && Since(t0) < sc.join_timeout_s && gnn_setup_failure.empty() &&
           !stop_flag->load())
      PollOnce(std::chrono::milliseconds(100));
  }

  // Evaluates `params` on the test set (the learner is used for nothing else while a run goes on).
  EvalStats Evaluate(const ParamSet& params) {
    (void)learner->SetParams(params);
    return learner->Evaluate(test);
  }

  // Evaluation of round r's model overlaps round r+1's training: the federation never waits for the
  // server's test pass. The round's metrics row is written when its evaluation finishes, and then
  // the checkpoint of that round, so a checkpoint never runs ahead of the rows.
  EvalWorker eval_worker;
  void WaitEval() { eval_worker.Wait(); }
  void EvaluateAndWrite(json row, bool async) {
    WaitEval();
    ServerCheckpoint ck;
    ck.round = row["round"].get<uint32_t>();
    ck.run_id = run_id;
    ck.seed = sc.seed;
    ck.virtual_clock_s = virtual_clock_s;
    std::ostringstream rng_state;
    rng_state << select_rng;
    ck.select_rng = rng_state.str();
    ck.global = global;
    auto job = [this, row = std::move(row), ck = std::move(ck)]() mutable {
      const EvalStats ev = Evaluate(ck.global);
      row["test_accuracy"] = ev.accuracy;
      row["test_loss"] = ev.loss;
      row["eval_s"] = ev.seconds;
      if (!WriteRow(row)) return;
      if (ck.round > 0) {
        if (Status st = SaveCheckpoint(sc.output_dir, ck); !st.ok()) return RecordFailed(st);
      }
      spdlog::info("round {:>3}/{}: accuracy {:.4f}  loss {:.4f}  participants {}/{}  failures {}  {:.1f} s",
                   row["round"].get<uint32_t>(), sc.rounds, ev.accuracy, ev.loss, row["participants"].get<size_t>(),
                   row["selected"].get<size_t>(), row["failures"].get<size_t>(), row["wall_s"].get<double>());
    };
    if (async) {
      eval_worker.Post(std::move(job));
    } else {
      job();
    }
  }

  // A result file could not be written: the run cannot go on without losing results, so it stops
  // after this round, and the error names the file.
  void RecordFailed(const Status& st) {
    std::lock_guard<std::mutex> lock(record_mu);
    if (record_error.ok()) {
      record_error = st;
      spdlog::error("{}; the run stops (rows written before are kept)", st.message());
    }
  }
  Status RecordError() {
    std::lock_guard<std::mutex> lock(record_mu);
    return record_error;
  }

  bool WriteRow(const json& row) {
    Status st = record.WriteRow(row);
    if (!st.ok()) RecordFailed(st);
    return st.ok();
  }

  void RunRound(uint32_t r, Clock::time_point run_start) {
    const auto t0 = Clock::now();
    BeginRound(r);
    train_time_max_s = train_loss_sum = 0.0;
    peak_train_bytes_max = kept_for_backward_max = 0;
    samples_sum = uplink_bytes = downlink_bytes = control_bytes = 0;
    link = LinkAccounting();
    ota_updates.clear();
    vq_answers.clear();
    ota_info = json();
    virtual_round_s = energy_compute_j = energy_radio_j = 0.0;
    stragglers = dropouts = over_committed = 0;
    answered_ids.clear();

    const Selection selection = strategy->ConfigureFit(r, Candidates(r), select_rng);
    const auto& selected = selection.ids;
    over_commit_target = selection.target;
    strategy->BeginRound(r, global);
    wire::Envelope ins_env;
    auto* ins = ins_env.mutable_fit_ins();
    ins->set_round(r);
    wire::ToTensors(global, ins->mutable_params());
    ins->set_local_epochs(sc.local_epochs);
    ins->set_batch_size(sc.batch_size);
    ins->set_learning_rate(static_cast<float>(sc.learning_rate));
    ins->set_momentum(static_cast<float>(sc.momentum));
    ins->set_deadline_s(sc.round_deadline_s);
    if (uplink->carries_codewords()) {
      const auto tq = Clock::now();
      Status st = FitRoundCodebook(r);
      if (!st.ok()) spdlog::error("round {}: fitting the VQ codebook failed: {}", r, st.message());
      auto* v = ins->mutable_vq();
      v->set_size(vq.size);
      v->set_block_length(vq.block_length);
      v->mutable_centroids()->Assign(vq.centroids.begin(), vq.centroids.end());
      v->set_error_feedback(sc.ota.error_feedback);
      ota_fit_s = Since(tq);
    }
    for (const auto& id : selected) {
      const auto* rec = registry.Find(id);
      ins->set_seed(DeriveSeed(sc.seed, "local-train", rec->index, r));
      float corrupt = 0.0f;
      for (const auto& c : sc.corrupt)
        if (c.node == rec->index && r >= c.from_round) corrupt = static_cast<float>(c.factor);
      ins->set_corrupt_factor(corrupt);
      bool crash = false;
      for (const auto& c : sc.crashes) crash |= (c.node == rec->index && c.round == r);
      ins->set_crash_mid_round(crash);
      if (Send(id, ins_env) == 0) {  // its connection is gone: a failure now, not selected again
        failures.push_back({id, "could not send fit_ins: the node's connection is gone"});
        registry.MarkGone(id);
        spdlog::warn("round {}: {} failed: its connection is gone", r, id);
        continue;
      }
      pending.insert(id);
      registry.Touch(id, Clock::now());
    }
    const size_t needed = std::max<size_t>(
        1, static_cast<size_t>(std::ceil(sc.min_quorum * static_cast<double>(selected.size()) - 1e-9)));

    AwaitPending(DeadlineFrom(t0));

    const auto t_agg = Clock::now();
    if (!ota_updates.empty()) SuperposeRound();
    if (!vq_answers.empty()) DigitalOtaRound();
    if (uplink->carries_codewords() && !ota_info.is_null()) ota_info["codebook_fit_s"] = ota_fit_s;
    if (sc.virtual_deadline_s > 0 && stragglers > 0) virtual_round_s = std::max(virtual_round_s, sc.virtual_deadline_s);
    virtual_clock_s += virtual_round_s;
    bool aggregated = false;
    if (accepted >= needed) {
      auto next = strategy->AggregateFit(r, global, failures);
      if (next.ok()) {
        global = std::move(next.value());
        aggregated = true;
        ++aggregated_rounds;
      } else {
        spdlog::error("round {}: aggregation failed: {}", r, next.status().ToString());
      }
    } else {
      spdlog::error("round {}: only {} of {} selected nodes answered, quorum is {}; the global model is kept", r,
                    accepted, selected.size(), needed);
    }
    const double aggregate_s = Since(t_agg);
    json node_eval;
    if (sc.evaluate_every > 0 && r % sc.evaluate_every == 0 && aggregated) node_eval = FederatedEvaluate(r, answered_ids);
    const double wall = Since(t0);

    json failed = json::array();
    for (const auto& f : failures) failed.push_back({{"node", f.node_id}, {"reason", f.reason}});
    json row = {{"round", r},
                {"train_loss", samples_sum ? train_loss_sum / static_cast<double>(samples_sum) : 0.0},
                {"selected", selected.size()},
                {"participants", accepted},
                {"failures", failures.size()},
                {"stragglers", stragglers},
                {"dropouts", dropouts},
                {"over_committed", over_committed},
                {"excluded_by_deadline", selection.excluded},
                {"virtual_round_s", virtual_round_s},
                {"virtual_clock_s", virtual_clock_s},
                {"energy_compute_j", energy_compute_j},
                {"energy_radio_j", energy_radio_j},
                {"energy_j", energy_compute_j + energy_radio_j},
                {"failed_nodes", failed},
                {"aggregated", aggregated},
                {"ota", ota_info},
                {"node_eval", node_eval},
                {"uplink_bytes", uplink_bytes},
                {"uplink_control_bytes", control_bytes},
                {"downlink_bytes", downlink_bytes},
                {"uplink_payload_bits", link.payload_bits},
                {"uplink_channel_uses", link.channel_uses},
                {"uplink_airtime_s", link.airtime_s},
                {"uplink_tx_energy_j", link.tx_energy_j},
                {"uplink_control_bits", link.control_bits},
                {"lost_packets", link.lost_packets},
                {"retransmissions", link.retransmissions},
                {"link_per_node", LinkJson()},
                {"train_time_max_s", train_time_max_s},
                {"peak_train_kb_max", static_cast<double>(peak_train_bytes_max) / 1024.0},
                {"kept_for_backward_kb_max", static_cast<double>(kept_for_backward_max) / 1024.0},
                {"aggregate_s", aggregate_s},
                {"wall_s", wall},
                {"overhead_s", std::max(0.0, wall - train_time_max_s)},
                {"elapsed_s", Since(run_start)}};
    const auto [rss, peak] = RssMb();
    row["server_rss_mb"] = rss;
    row["server_peak_rss_mb"] = peak;
    EvaluateAndWrite(std::move(row), /*async=*/true);
  }

  void Shutdown(const std::string& reason = "run complete") {
    wire::Envelope bye;
    bye.mutable_shutdown()->set_reason(reason);
    const auto ids = registry.AliveIds();
    for (const auto& id : ids) Send(id, bye);
    const auto t0 = Clock::now();
    round = 0;
    while (registry.alive_count() > 0 && Since(t0) < 3.0) PollOnce(std::chrono::milliseconds(100));
  }

  std::atomic<bool>* stop_flag = nullptr;

  // Rounds first_round..rounds until a stop, a failed result write, or no node alive; returns the
  // last round run. An early end leaves its reason in stop_reason.
  uint32_t RunRounds(const std::function<void(uint32_t)>& run_round) {
    uint32_t done = first_round - 1;
    for (uint32_t r = first_round; r <= sc.rounds; ++r) {
      if (stop_flag->load()) {
        stop_reason = "stopped by a signal (SIGINT/SIGTERM) before round " + std::to_string(r);
        break;
      }
      if (Status st = RecordError(); !st.ok()) {
        stop_reason = "results could not be written: " + st.message();
        break;
      }
      if (registry.alive_count() == 0) {
        stop_reason = "no node is alive before round " + std::to_string(r) + LastFailures();
        break;
      }
      run_round(r);
      done = r;
    }
    if (!stop_reason.empty()) spdlog::error("the run ends early: {}", stop_reason);
    return done;
  }

  // "; last failures: node-1: ..., node-2: ..." of the round just run, for a stop's reason.
  std::string LastFailures() const {
    std::string out;
    for (size_t i = 0; i < failures.size() && i < 5; ++i) out += (i ? ", " : "; last failures: ") + failures[i].node_id + ": " + failures[i].reason;
    if (failures.size() > 5) out += fmt::format(" (and {} more)", failures.size() - 5);
    return out;
  }

  // What the run's summary.json says of how it ended: complete, stopped (by a signal), or failed.
  json Outcome(uint32_t done, uint64_t aggregated_rounds) const {
    std::string status = "complete";
    if (stop_flag->load()) status = "stopped";
    else if (!stop_reason.empty() || done < sc.rounds || (sc.rounds > 0 && aggregated_rounds == 0)) status = "failed";
    std::string reason = stop_reason;
    if (reason.empty() && status == "failed") reason = "no round aggregated an update (see failed_nodes in metrics.jsonl)";
    return {{"status", status}, {"stop_reason", reason.empty() ? json(nullptr) : json(reason)},
            {"rounds_aggregated", aggregated_rounds}, {"resumed_from_round", first_round > 1 ? json(first_round - 1) : json(nullptr)}};
  }

  json DroppedJson() const {
    const auto& s = stats;
    return {{"frames", s.frames},         {"malformed", s.malformed},
            {"oversize", s.oversize},     {"bad_version", s.bad_version},
            {"bad_tensor", s.bad_tensor}, {"unexpected", s.unexpected},
            {"unknown_node", s.unknown_node}, {"handshake_failed", net.stats().handshake_failed},
            {"refused_connections", net.stats().refused_connections},
            {"rejected_joins", s.rejected_joins}, {"capped_samples", s.capped_samples}};
  }

  Status SetUpDigitalOta() {
    const OtaConfig& o = sc.ota;
    auto fn = ParseSymmetricFn(o.aggregate);
    if (!fn.ok()) return fn.status();
    symmetric.fn = fn.value();
    symmetric.trim = o.trim;
    ura_d = o.code_length;
    if (o.decoder == "amp_da") {
      AmpDaOptions a;
      a.iterations = o.amp_iterations;
      a.damping = o.amp_damping;
      decoder = MakeAmpDa(o.codebook_size, o.code_length, DeriveSeed(sc.seed, "ura-code"), a);
    } else if (o.decoder == "amp_da_net") {
      const std::string path = o.decoder_path.empty() ? DefaultDecoderPath() : o.decoder_path;
      auto net = LoadAmpDaNet(path);
      if (!net.ok()) return Status::InvalidArgument("ota.decoder_path: " + net.status().message());
      if (net.value()->n() != o.codebook_size)
        return Status::InvalidArgument("ota.codebook_size = " + std::to_string(o.codebook_size) + " but the decoder " + path +
                                       " was trained for n = " + std::to_string(net.value()->n()));
      decoder = std::move(net.value());
      ura_d = decoder->d();  // the learned code's length
    }
    if (decoder) {
      ura_code = decoder->codebook();
    } else {
      Rng rng = MakeRng(sc.seed, "ura-code");
      ura_code = RandomUnitCodebook(o.codebook_size, o.code_length, rng);
    }
    auto proxy = Learner::Create(ScenarioModel(sc), sc.seed);
    if (!proxy.ok()) return proxy.status();
    proxy_learner = std::move(proxy.value());
    auto train = LoadScenarioData(sc, true);
    if (!train.ok()) return train.status();
    proxy_data = std::move(train.value());
    const size_t share = o.proxy_samples ? o.proxy_samples : proxy_data.size() / std::max<uint32_t>(1, sc.nodes);
    std::vector<uint32_t> all(proxy_data.size());
    std::iota(all.begin(), all.end(), 0u);
    Rng rng = MakeRng(sc.seed, "vq-proxy-samples");
    std::shuffle(all.begin(), all.end(), rng);
    proxy_indices.assign(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(std::min(share, all.size())));
    spdlog::info("digital OTA: VQ blocks of {}, {} codewords of {} real channel uses, decoder {}, aggregate {}; the "
                 "codebook is fitted each round on {} samples of the server's own",
                 o.block_length, o.codebook_size, ura_d, decoder ? decoder->name() : "exact (error-free)", o.aggregate,
                 proxy_indices.size());
    return Status::Ok();
  }
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) { impl_->stop_flag = &stop_; }

Status Server::RunSplit(Clock::time_point run_start) {
  auto& m = *impl_;
  const uint32_t done = m.RunRounds([&](uint32_t r) { m.RunSplitRound(r, run_start); });
  json inference;
  if (m.sc.split.inference.requests > 0 && !stop_) inference = m.RunSplitInference();
  m.Shutdown(m.stop_reason.empty() && !stop_ ? "run complete" : "run stopped");
  Status saved = m.split->SaveModels(m.sc.output_dir);
  if (!saved.ok()) m.RecordFailed(saved);
  json summary = m.split->Summary();
  const auto& widths = summary["widths"];
  summary.update({{"run_id", m.run_id},
                  {"model", m.sc.model},
                  {"rounds_completed", done},
                  {"final_test_accuracy", widths.empty() ? json(nullptr) : widths.back()["test_accuracy"]},
                  {"wall_s", Since(run_start)},
                  {"inference", inference},
                  {"dropped", m.DroppedJson()}});
  summary.update(m.Outcome(done, done));
  EDGEBED_RETURN_IF_ERROR(m.record.WriteSummary(summary));
  EDGEBED_RETURN_IF_ERROR(m.RecordError());
  if (summary["status"] != "complete") return Status::Unavailable("split run " + summary["status"].get<std::string>() + ": " + summary["stop_reason"].dump());
  spdlog::info("split run complete: {} rounds, widest test accuracy {}, {:.1f} s; outputs in {}", done,
               summary["final_test_accuracy"].dump(), Since(run_start), m.sc.output_dir);
  if (!inference.is_null() && inference.contains("passes"))
    for (const auto& p : inference["passes"])
      spdlog::info("inference pass {} ({}): deadline met on {:.1f}% of {} requests, mean width {:.2f}, accuracy {:.4f}",
                   p["pass"].get<int>(), p["controller"].get<std::string>(), 100 * p["deadline_met"].get<double>(),
                   p["requests"].get<size_t>(), p["mean_width"].get<double>(), p["accuracy"].get<double>());
  return Status::Ok();
}
Status Server::RunGnn() {
  auto& m = *impl_;
  EDGEBED_RETURN_IF_ERROR(m.gnn->Open());
  const auto run_start = Clock::now();
  m.WaitForNodes();  // a shard is ready once it has built its graph and listens for its peers
  std::string stopped;
  uint32_t done = 0;
  if (!m.gnn_setup_failure.empty()) {
    stopped = "setup: " + m.gnn_setup_failure;
  } else if (stop_) {
    stopped = "stopped by a signal (SIGINT/SIGTERM) while waiting for the shards";
  } else if (!m.gnn->AllReady()) {
    stopped = std::to_string(m.registry.ready_count()) + " of " + std::to_string(m.gnn->shards()) +
              " shards were ready within server.join_timeout_s = " + std::to_string(m.sc.join_timeout_s) +
              " s (see the node logs); every shard is needed";
  } else {
    wire::Envelope start;
    m.gnn->MakeStart(start.mutable_gnn_start());
    for (const auto& id : m.registry.AliveIds()) m.Send(id, start);
    spdlog::info("gnn: every shard is ready; {} epochs", m.sc.gnn.epochs);
  }
  for (uint32_t e = 1; stopped.empty() && e <= m.sc.gnn.epochs && !stop_; ++e) {
    const auto t0 = Clock::now();
    m.BeginRound(e);
    for (const auto& id : m.registry.AliveIds()) {
      wire::Envelope env;
      m.gnn->MakeEpoch(e, m.registry.Find(id)->index, env.mutable_gnn_epoch());
      if (m.Send(id, env) > 0) m.pending.insert(id);
    }
    const size_t asked = m.pending.size();
    m.AwaitPending(m.DeadlineFrom(t0), /*first_failure=*/true);
    if (!m.failures.empty() || m.accepted < m.gnn->shards() || asked < m.gnn->shards()) {
      std::string why;
      for (const auto& f : m.failures) {
        const auto* rec = m.registry.Find(f.node_id);
        why += (why.empty() ? "" : "; ") + f.node_id + " (" + (m.sc.gnn.mode == "pipe" ? "stage " : m.sc.gnn.mode == "graph" ? "partition " : "shard ") +
               std::to_string(rec ? rec->index : 0) + ") " + f.reason;
      }
      if (why.empty()) why = std::to_string(m.accepted) + " of " + std::to_string(m.gnn->shards()) + " shards reported";
      stopped = "epoch " + std::to_string(e) + ": " + why;
      break;
    }
    json row = m.gnn->EndEpoch(e, Since(t0));
    done = e;
    if (e == 1 || e % 10 == 0 || e == m.sc.gnn.epochs)
      spdlog::info("epoch {}/{}: train loss {:.4f}, val {}, test {}, sent {:.1f} KB, {:.3f} s", e, m.sc.gnn.epochs,
                   row["train_loss"].get<double>(), row["val_accuracy"].dump(), row["test_accuracy"].dump(),
                   (row["embedding_bytes"].get<double>() + row["gradient_bytes"].get<double>() +
                    row["parameter_bytes"].get<double>() + row["eval_bytes"].get<double>()) / 1024.0,
                   row["epoch_s"].get<double>());
  }
  if (!stopped.empty())
    spdlog::error("GNN training stops: {}. A {} cannot go on without every shard; metrics up to epoch {} are kept in {}",
                  stopped, m.sc.gnn.mode == "graph" ? "graph-parallel run" : "pipeline", done, m.sc.output_dir);
  m.pending.clear();  // the others leave on the shutdown; that is not a failure of theirs
  m.Shutdown(stopped.empty() ? "run complete" : "run stopped: " + stopped);
  json summary = m.gnn->Summary();
  summary.update({{"run_id", m.run_id}, {"model", m.sc.model}, {"epochs_completed", done}, {"wall_s", Since(run_start)},
                  {"stopped", stopped.empty() ? json(nullptr) : json(stopped)}, {"dropped", m.DroppedJson()}});
  if (stopped.empty() && stop_) stopped = "stopped by a signal (SIGINT/SIGTERM) after epoch " + std::to_string(done);
  summary["status"] = stopped.empty() ? "complete" : stop_ ? "stopped" : "failed";
  summary["stop_reason"] = stopped.empty() ? json(nullptr) : json(stopped);
  EDGEBED_RETURN_IF_ERROR(WriteSummaryFile(m.sc.output_dir, summary));
  if (!stopped.empty()) return Status::Unavailable("GNN training stopped at " + stopped);
  spdlog::info("gnn run complete: {} epochs, test accuracy {:.4f} at best validation (epoch {}), {:.1f} s; outputs in {}",
               done, summary["test_accuracy"].get<double>(), summary["best_epoch"].get<uint32_t>(), Since(run_start),
               m.sc.output_dir);
  return Status::Ok();
}

Server::~Server() = default;
const ServerStats& Server::stats() const { return impl_->stats; }
const LinkStats& Server::link_stats() const { return impl_->net.stats(); }
const ParamSet& Server::global() const { return impl_->global; }

Result<std::unique_ptr<Server>> Server::Create(const Scenario& sc) {
  auto impl = std::make_unique<Impl>();
  impl->sc = sc;
  impl->registry = NodeRegistry(sc.nodes);
  impl->select_rng = MakeRng(sc.seed, "select");
  SetTorchThreads(static_cast<int>(sc.server_threads));
  impl->run_id = sc.name + "-" + std::to_string(sc.seed);
  if (sc.is_gnn()) {
    auto gnn = GnnService::Create(sc);
    if (!gnn.ok()) return gnn.status();
    impl->gnn = std::move(gnn.value());
    return std::unique_ptr<Server>(new Server(std::move(impl)));
  }
  if (sc.is_split()) {
    auto test = LoadScenarioData(sc, false);
    if (!test.ok()) return test.status();
    auto split = SplitService::Create(sc, std::move(test.value()));
    if (!split.ok()) return split.status();
    impl->split = std::move(split.value());
    return std::unique_ptr<Server>(new Server(std::move(impl)));
  }
  if (!sc.transfer.backbone.empty()) {
    auto crc = FileCrc32(sc.transfer.backbone);
    if (!crc.ok())
      return Status::NotFound("transfer.backbone: " + crc.status().message() +
                              " (make one with: edgebed transfer pretrain --out " + sc.transfer.backbone + ")");
    impl->backbone_crc32 = crc.value();
  }
  auto learner = Learner::Create(ScenarioModel(sc), sc.seed);
  if (!learner.ok()) return learner.status();
  impl->learner = std::move(learner.value());
  impl->global = impl->learner->GetParams();
  if (!sc.transfer.backbone.empty())
    spdlog::info("transfer from {} ({}): the top {} IRBs train, classes {}; an update carries {:.1f} KB, the full model "
                 "{:.1f} KB", sc.transfer.backbone, sc.transfer.mode,
                 impl->learner->TrainableBlocks(), sc.classes.empty() ? "all" : FormatClasses(sc.classes),
                 impl->global.bytes() / 1024.0, impl->learner->FullModelBytes() / 1024.0);
  StrategyOptions so;
  so.name = sc.strategy;
  so.fraction = sc.fraction;
  so.selection.policy = sc.selection;
  so.selection.over_commit = sc.over_commit;
  so.selection.virtual_deadline_s = sc.virtual_deadline_s;
  // What each node holds: the cap on the sample count its updates may claim (and the load-time
  // check that the partition works at all, e.g. Dirichlet with too few samples per node).
  auto sizes = ScenarioPartitionSizes(sc);
  if (!sizes.ok()) return sizes.status();
  impl->assigned_samples = std::move(sizes.value());
  auto strategy = MakeStrategy(so);
  if (!strategy.ok()) return strategy.status();
  impl->strategy = std::move(strategy.value());
  auto uplink = MakeUplink(sc.channel, sc.nodes, sc.seed);
  if (!uplink.ok()) return uplink.status();
  impl->uplink = std::move(uplink.value());
  if (impl->uplink->carries_codewords()) EDGEBED_RETURN_IF_ERROR(impl->SetUpDigitalOta());
  auto test = LoadScenarioData(sc, false);
  if (!test.ok()) return test.status();
  impl->test = std::move(test.value());
  spdlog::info("uplink: {}", impl->uplink->Describe());
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Result<std::string> Server::Bind() {
  auto& m = *impl_;
  NodeLinkOptions o;
  o.bind = m.sc.bind;
  o.max_frame_bytes = m.sc.max_frame_bytes();
  o.max_connections = m.sc.max_connections;
  o.max_connections_per_peer = m.sc.max_connections_per_peer;
  return m.net.Bind(o);
}

Status Server::Resume() {
  auto& m = *impl_;
  if (m.split || m.gnn)
    return Status::InvalidArgument("--resume continues federated runs; split learning (model slimsplit) and GNN runs "
                                   "(model gnn) start afresh");
  auto ck = LoadCheckpoint(m.sc.output_dir);
  if (!ck.ok()) return ck.status();
  if (ck->run_id != m.run_id || ck->seed != m.sc.seed)
    return Status::InvalidArgument(CheckpointPath(m.sc.output_dir) + " belongs to run '" + ck->run_id + "' (seed " +
                                   std::to_string(ck->seed) + "), not to '" + m.run_id + "'");
  if (!ck->global.SameLayout(m.global))
    return Status::InvalidArgument(CheckpointPath(m.sc.output_dir) + " holds another model's tensors than model.name = " + m.sc.model);
  std::istringstream rng_state(ck->select_rng);
  rng_state >> m.select_rng;
  if (rng_state.fail()) return Status::Corruption(CheckpointPath(m.sc.output_dir) + ": select_rng state does not parse");
  m.global = std::move(ck->global);
  m.virtual_clock_s = ck->virtual_clock_s;
  m.first_round = ck->round + 1;
  spdlog::info("resuming run {} after round {} of {} (from {})", m.run_id, ck->round, m.sc.rounds, CheckpointPath(m.sc.output_dir));
  return Status::Ok();
}

Status Server::Run() {
  auto& m = *impl_;
  if (m.net.endpoint().empty()) {
    auto ep = Bind();
    if (!ep.ok()) return ep.status();
  }
  std::error_code ec;
  fs::create_directories(m.sc.output_dir, ec);
  if (ec) return Status::IoError("output_dir '" + m.sc.output_dir + "': " + ec.message());
  EDGEBED_RETURN_IF_ERROR(WriteFileAtomic(m.sc.output_dir + "/scenario.toml", m.sc.ToToml()));
  if (m.gnn) return RunGnn();
  EDGEBED_RETURN_IF_ERROR(m.first_round > 1 ? m.record.Reopen(m.sc.output_dir, FederatedCsvColumns(), m.first_round - 1)
                                            : m.record.Open(m.sc.output_dir, FederatedCsvColumns()));

  const auto run_start = Clock::now();
  m.WaitForNodes();
  if (stop_) return Status::Unavailable("stopped by a signal (SIGINT/SIGTERM) while waiting for nodes to join");
  if (m.registry.alive_count() == 0)
    return Status::Unavailable("no node joined within server.join_timeout_s = " + std::to_string(m.sc.join_timeout_s) + " s");
  if (m.registry.alive_count() < m.sc.nodes)
    spdlog::warn("{} of {} nodes joined within {:.0f} s; starting with those", m.registry.alive_count(), m.sc.nodes,
                 m.sc.join_timeout_s);

  if (m.split) return RunSplit(run_start);
  if (m.first_round == 1)
    m.EvaluateAndWrite({{"round", 0}, {"train_loss", 0.0}, {"selected", 0}, {"participants", 0}, {"failures", 0},
                        {"failed_nodes", json::array()}, {"aggregated", false}, {"uplink_bytes", 0},
                        {"downlink_bytes", 0}, {"wall_s", 0.0}, {"overhead_s", 0.0}, {"elapsed_s", Since(run_start)}},
                       /*async=*/false);
  const uint32_t done = m.RunRounds([&](uint32_t r) { m.RunRound(r, run_start); });
  m.WaitEval();
  const bool complete = m.stop_reason.empty() && !stop_ && done == m.sc.rounds;
  m.Shutdown(complete ? "run complete" : "run stopped: " + (m.stop_reason.empty() ? std::string("by a signal") : m.stop_reason));

  const EvalStats final_eval = m.Evaluate(m.global);
  Status saved = m.learner->Save(m.sc.output_dir + "/final_model.pt");
  if (!saved.ok()) m.RecordFailed(Status::IoError("cannot write " + m.sc.output_dir + "/final_model.pt: " + saved.message()));
  json summary = {{"run_id", m.run_id},
                  {"rounds_completed", done},
                  {"final_test_accuracy", final_eval.accuracy},
                  {"final_test_loss", final_eval.loss},
                  {"wall_s", Since(run_start)},
                  {"model", m.sc.model},
                  {"parameters", m.global.numel()},
                  {"update_bytes", m.global.bytes()},  // what one node's update carries (float32)
                  {"full_model_bytes", m.learner->FullModelBytes()},
                  {"trainable_blocks", m.learner->TrainableBlocks()},
                  {"kept_for_backward_bytes_analytic", m.sc.transfer.backbone.empty() ? json(nullptr) : json(KeptForBackwardAnalytic(
                       m.sc.transfer.mode, m.learner->TrainableBlocks(), static_cast<int>(m.sc.batch_size),
                       ScenarioModel(m.sc).num_classes))},
                  {"dropped", m.DroppedJson()}};
  summary.update(m.Outcome(done, m.aggregated_rounds));
  if (Status st = m.record.WriteSummary(summary); !st.ok()) m.RecordFailed(st);
  EDGEBED_RETURN_IF_ERROR(m.RecordError());
  const std::string status = summary["status"].get<std::string>();
  if (status != "complete") {
    spdlog::warn("run {}: {} of {} rounds, {} aggregated; final test accuracy {:.4f}; outputs in {}", status, done,
                 m.sc.rounds, m.aggregated_rounds, final_eval.accuracy, m.sc.output_dir);
    return Status::Unavailable("run " + status + ": " + summary["stop_reason"].get<std::string>());
  }
  spdlog::info("run complete: {} rounds, final test accuracy {:.4f}, {:.1f} s; outputs in {}", done,
               final_eval.accuracy, Since(run_start), m.sc.output_dir);
  return Status::Ok();
}

}  // namespace edgebed
