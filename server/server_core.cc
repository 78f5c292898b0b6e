#include "server/server_core.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "codecs/zmq_wire.h"
#include "record/files.h"

#include "splitnets/device_profile.h"

namespace edgebed {

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void PutFailures(const json& failed, json* row) {
  json failures = json::array(), offline = json::array();
  for (const auto& f : failed) {
    if (f.value("reason", std::string()).rfind("unavailable", 0) == 0) offline.push_back(f.value("node", std::string()));
    else failures.push_back(f);
  }
  (*row)["failures"] = failures.size();
  (*row)["failed_nodes"] = std::move(failures);
  (*row)["dropouts"] = offline.size();
  (*row)["offline_nodes"] = std::move(offline);
}

json ServerCore::RoundFailures() const {
  json failed = json::array();
  for (const auto& f : rounds.failures()) failed.push_back({{"node", f.node_id}, {"reason", f.reason}});
  return failed;
}

ServerCore::ServerCore(ServerCoreOptions options, std::atomic<bool>* stop)
    : core(std::move(options)), stop_flag(stop), run_id(UniqueRunId(core.run_name)), registry(core.nodes), rounds(core.rounds) {}

Result<std::string> ServerCore::Bind(const CurveOptions& curve) {
  NodeLinkOptions o = core.link;
  o.curve = curve;
  return net.Bind(o);
}

Status ServerCore::PrepareOutput() {
  if (net.endpoint().empty()) {
    auto ep = Bind();
    if (!ep.ok()) return ep.status();
  }
  std::error_code ec;
  std::filesystem::create_directories(core.output_dir, ec);
  if (ec) return Status::IoError("output_dir '" + core.output_dir + "': " + ec.message());
  return WriteFileAtomic(core.output_dir + "/scenario.toml", core.resolved_scenario);
}

const ParamSet& ServerCore::global_model() const {
  static const ParamSet kNone;
  return kNone;
}

// Sends to node `to` over the connection that carries it (its own, or its node host's).
size_t ServerCore::Send(const std::string& to, wire::Envelope& env, const std::string& route) {
  env.set_sender("server");
  std::string via = route;
  if (via.empty()) {
    const auto* rec = registry.Find(to);
    via = rec && !registry.Route(*rec).empty() ? registry.Route(*rec) : to;
  }
  if (via != to) env.set_node(to);
  const size_t n = net.Send(via, env);
  downlink_bytes += n;
  return n;
}

void ServerCore::SendError(const std::string& to, wire::ErrorCode code, const std::string& msg) {
  if (to.empty()) return;
  wire::Envelope e;
  e.mutable_error()->set_code(code);
  e.mutable_error()->set_message(msg);
  e.mutable_error()->set_round(rounds.round());
  Send(to, e);
}

void ServerCore::Gone(const std::string& id, const std::string& reason) {
  registry.MarkGone(id, reason);
  Fail(id, reason);
}

void ServerCore::Fail(const std::string& id, const std::string& reason) {
  if (!rounds.Fail(id, reason)) return;
  NodeRecord* rec = registry.Find(id);
  if (rec) ++rec->rounds_failed;
  // Simulated populations fail by the dozen every round (that is the point); keep them out of the log.
  spdlog::log(rec && rec->simulated ? spdlog::level::debug : spdlog::level::warn, "{} {}: {} failed: {}", core.round_name, rounds.round(),
              id, reason);
}

// A connection closed: every node it carried is gone at once (a pending one has failed), and its
// index is free for a node that joins again.
void ServerCore::OnRouteClosed(const std::string& route) {
  for (const auto& id : registry.ReleaseRoute(route)) {
    const auto* rec = registry.Find(id);
    spdlog::log(rec && rec->simulated ? spdlog::level::debug : spdlog::level::info, "{}: its connection closed", id);
    Gone(id, "its connection closed (process ended or link lost)");
  }
  ++closed_connections_;
}

void ServerCore::OnMessage(const std::string& route, std::vector<zmq::message_t>& parts) {
  ++stats.frames;
  const std::string& from = route;
  if (parts.size() < 2) {
    ++stats.malformed;
    spdlog::error("dropped a message from '{}' with no Envelope frame", wire::Printable(from));
    SendError(from, wire::MALFORMED, "a message must start with a frame holding one Envelope");
    return;
  }
  const zmq::message_t& payload = parts[1];
  const wire::FrameViews attached = wire::Views(parts, 2);  // the frames its tensors ride in
  size_t message_bytes = 0;
  for (size_t i = 1; i < parts.size(); ++i) message_bytes += parts[i].size();
  wire::Envelope env;
  Status st = wire::Decode(payload.data(), payload.size(), core.link.max_frame_bytes, &env);
  if (st.ok()) st = wire::CheckAttached(payload.size(), attached, core.link.max_frame_bytes);
  // A node host carries many nodes on one connection; each message names its node.
  const std::string node = st.ok() && !env.node().empty() ? env.node() : from;
  if (auto* rec = registry.Find(node); rec && registry.Route(*rec) == route) {
    registry.Touch(node, Clock::now());
    registry.TouchRoute(route, Clock::now());  // only a connection carrying a joined node counts
  }
  if (rounds.round() > 0 && rounds.Expects(node))
    (st.ok() && env.has_fit_res() ? uplink_bytes : control_bytes) += message_bytes;
  if (!st.ok()) {
    wire::ErrorCode code = wire::MALFORMED;
    if (message_bytes > core.link.max_frame_bytes) {
      ++stats.oversize;
      code = wire::OVERSIZE;
    } else if (st.code() == Status::Code::kInvalidArgument) {
      ++stats.bad_version;
      code = wire::BAD_VERSION;
    } else {
      ++stats.malformed;
    }
    spdlog::error("dropped a message of {} bytes from '{}': {}", message_bytes, wire::Printable(from), st.ToString());
    SendError(from, code, st.message());
    return;
  }
  if (!env.has_join()) {  // a node speaks only over the connection it joined on
    const auto* rec = registry.Find(node);
    if (rec && registry.Route(*rec) != route) {
      ++stats.unknown_node;
      spdlog::error("dropped {} for '{}' from connection '{}': that node joined over '{}'", wire::BodyName(env), node,
                    wire::Printable(route), wire::Printable(registry.Route(*rec)));
      return;
    }
  }
  const std::string& from_node = node;
  switch (env.body_case()) {
    case wire::Envelope::kJoin: return OnJoin(from_node, route, env.join());
    case wire::Envelope::kHeartbeat: return OnHeartbeat(from_node, env.heartbeat());
    case wire::Envelope::kLeave: return OnLeave(from_node, env.leave());
    case wire::Envelope::kError: return OnNodeError(from_node, env.error());
    case wire::Envelope::kFitRes:
    case wire::Envelope::kEvaluateRes:
    case wire::Envelope::kSplitForward:
    case wire::Envelope::kSplitDone:
    case wire::Envelope::kSplitInferDone:
    case wire::Envelope::kGnnReady:
    case wire::Envelope::kGnnEpochDone:
      if (OnModeMessage(from_node, env, attached)) return;
      ++stats.unexpected;
      spdlog::error("dropped {} from '{}': this is a {}", wire::BodyName(env), wire::Printable(from_node), mode_name());
      return SendError(from_node, wire::UNEXPECTED, wire::BodyName(env) + " in a " + mode_name());
    default:
      ++stats.unexpected;
      spdlog::error("dropped {} from '{}': nodes do not send that", wire::BodyName(env), wire::Printable(from_node));
      SendError(from_node, wire::UNEXPECTED, wire::BodyName(env) + " is a server-to-node message");
  }
}

void ServerCore::OnNodeError(const std::string& from, const wire::Error& e) {
  const bool its_round = rounds.Expects(from, e.round()) || (rounds.Expects(from) && e.round() == 0);
  if (its_round && e.code() == wire::UNAVAILABLE)  // it cannot do its part of this round
    return Fail(from, "unavailable: " + wire::Printable(e.message(), 400));
  if (its_round && (e.code() == wire::TRAINING_FAILED || e.code() == wire::BAD_TENSOR))  // it tried, and failed
    return Fail(from, wire::ErrorCode_Name(e.code()) + ": " + wire::Printable(e.message(), 400));
  spdlog::warn("{} reports error {}: {}", wire::Printable(from), wire::ErrorCode_Name(e.code()), wire::Printable(e.message()));
}

// With CURVE, a connection may join only as the node names its key is bound to (a relay's key
// carries nodes the relay admitted by their own keys).
Status ServerCore::KeyPermits(const std::string& route, const std::string& node_id) const {
  const AllowList* allow = net.allow();
  if (!allow) return Status::Ok();
  const std::string user = net.UserOf(route);
  const AllowEntry* entry = allow->ByLabel(user);
  if (!entry) return Status::InvalidArgument("this connection's key is not on the allow-list");
  if (!entry->Permits(node_id))
    return Status::InvalidArgument("the connection's key is bound to '" + entry->label + "', not to '" + wire::Printable(node_id) + "'");
  return Status::Ok();
}

bool ServerCore::KnownAlive(const std::string& from, const char* what) {
  auto* rec = registry.Find(from);
  if (rec && rec->alive) return true;
  ++stats.unknown_node;
  spdlog::error("dropped {} from '{}': that node has not joined", what, wire::Printable(from));
  SendError(from, wire::UNKNOWN_NODE, std::string(what) + " from a node that has not joined; send join first");
  return false;
}

void ServerCore::OnJoin(const std::string& from, const std::string& route, const wire::Join& j) {
  wire::Envelope out;
  auto* ack = out.mutable_join_ack();
  Status st = from == j.node_id()
                  ? KeyPermits(route, j.node_id())
                  : Status::InvalidArgument("join.node_id '" + wire::Printable(j.node_id()) + "' differs from the identity '" +
                                            wire::Printable(from) + "'");
  if (st.ok()) st = registry.Join(from, route, j.node_index(), Clock::now());
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
  registry.SetProfile(*rec, FromWire(j.profile()));
  rec->num_samples = j.num_samples();
  *ack = core.join_ack;
  ack->set_accepted(true);
  ack->set_run_id(run_id);
  FillJoinAck(j.node_index(), ack);
  Send(from, out);
  if (!rec->simulated || registry.alive_count() % 100 == 0 || registry.alive_count() == core.nodes)
    spdlog::info("{} joined (index {}, {}); {} of {} nodes", from, j.node_index(), wire::Printable(j.device()),
                 registry.alive_count(), core.nodes);
}

// Waits for every pending node to finish, until `deadline`, failing those silent for longer than
// the liveness timeout and, at the end, those still pending.
// `first_failure`: return as soon as one node has failed (GNN shards need each other).
void ServerCore::FailSilentNodes() {
  for (const auto& id : rounds.Silent(registry, Clock::now()))
    Gone(id, fmt::format("silent for more than server.liveness_timeout_s = {:g}", rounds.options().liveness_timeout_s) +
                 " s (process died or link lost)");
}

void ServerCore::AwaitPending(Clock::time_point deadline, bool first_failure) {
  constexpr double kProgressEvery_s = 10.0;
  const Clock::time_point start = Clock::now();
  Clock::time_point shown = start;
  std::chrono::milliseconds wait(200);
  while (!rounds.done() && Clock::now() < deadline && !stop_flag->load() && !(first_failure && !rounds.failures().empty())) {
    PollOnce(wait);
    wait = AfterPoll();
    FailSilentNodes();
    if (Since(shown) >= kProgressEvery_s) {
      shown = Clock::now();
      spdlog::info("{}", RoundProgressLine(Since(start)));
    }
  }
  if (first_failure && !rounds.failures().empty()) return;
  if (stop_flag->load()) {  // a stop is no node's failure: the round simply ends unfinished
    rounds.Abandon();
    return;
  }
  for (const auto& id : rounds.Pending())
    Fail(id, fmt::format("missed the round deadline of server.round_deadline_s = {:g} s", rounds.options().round_deadline_s));
}

// A heartbeat for round 0 says the node has prepared its data and model after join_ack; later ones
// carry its progress in the round.
void ServerCore::OnHeartbeat(const std::string& from, const wire::Heartbeat& hb) {
  if (!KnownAlive(from, "heartbeat")) return;
  if (hb.round() == 0) registry.MarkReady(from);
  else NoteProgress(from, hb.round(), hb.progress());
}

void ServerCore::OnLeave(const std::string& from, const wire::Leave& l) {
  // A node whose connection went before its leave was read (a send to it failed first) left all the same.
  if (const NodeRecord* gone = registry.Find(from); gone && !gone->alive) {
    spdlog::log(gone->simulated ? spdlog::level::debug : spdlog::level::info, "{} left: {}", from, wire::Printable(l.reason()));
    return;
  }
  if (!KnownAlive(from, "leave")) return;
  Gone(from, "left the federation: " + wire::Printable(l.reason()));
  const auto* rec = registry.Find(from);
  spdlog::log(rec && rec->simulated ? spdlog::level::debug : spdlog::level::info, "{} left: {}", from,
              wire::Printable(l.reason()));
}

void ServerCore::WaitForNodes() {
  const auto t0 = Clock::now();
  spdlog::info("waiting up to {:.0f} s for {} nodes on {}", core.join_timeout_s, core.nodes, net.endpoint());
  // Round 1 starts once every node has joined and prepared its data (so that the liveness clock,
  // which starts at fit_ins, never counts a node's data loading), or at the join timeout.
  while (registry.ready_count() < core.nodes && Since(t0) < core.join_timeout_s && setup_failure.empty() &&
         !stop_flag->load())
    PollOnce(std::chrono::milliseconds(100));
}

// A result file could not be written: the run cannot go on without losing results, so it stops
// after this round, and the error names the file.
Status ServerCore::AwaitJoins() {
  WaitForNodes();
  if (stopping()) return Status::Unavailable("stopped by a signal (SIGINT/SIGTERM) while waiting for nodes to join");
  if (registry.alive_count() == 0)
    return Status::Unavailable("no node joined within server.join_timeout_s = " + std::to_string(core.join_timeout_s) + " s");
  if (registry.alive_count() < core.nodes)
    spdlog::warn("{} of {} nodes joined within {:.0f} s; starting with those", registry.alive_count(), core.nodes,
                 core.join_timeout_s);
  return Status::Ok();
}

ServerCheckpoint ServerCore::NewCheckpoint(uint32_t round) const {
  ServerCheckpoint ck;
  ck.round = round;
  ck.run_id = run_id;
  ck.seed = core.seed;
  return ck;
}

bool ServerCore::WriteCheckpoint(const ServerCheckpoint& ck) {
  Status st = SaveCheckpoint(core.output_dir, ck);
  if (!st.ok()) RecordFailed(st);
  return st.ok();
}

Result<ServerCheckpoint> ServerCore::ReadCheckpoint() {
  auto ck = LoadCheckpointOf(core.output_dir, core.run_name, core.seed);
  if (ck.ok()) run_id = ck->run_id;
  return ck;
}

void ServerCore::RecordFailed(const Status& st) {
  std::lock_guard<std::mutex> lock(record_mu_);
  if (record_error_.ok()) {
    record_error_ = st;
    spdlog::error("{}; the run stops (rows written before are kept)", st.message());
  }
}

Status ServerCore::RecordError() {
  std::lock_guard<std::mutex> lock(record_mu_);
  return record_error_;
}

bool ServerCore::WriteRow(const json& row) {
  Status st = record.WriteRow(row);
  if (!st.ok()) RecordFailed(st);
  else RefreshReport(false);
  return st.ok();
}

void ServerCore::Shutdown(const std::string& reason) {
  wire::Envelope bye;
  bye.mutable_shutdown()->set_reason(reason);
  const auto ids = registry.AliveIds();
  for (const auto& id : ids) Send(id, bye);
  const auto t0 = Clock::now();
  rounds.Begin(0);
  while (registry.alive_count() > 0 && Since(t0) < 3.0) PollOnce(std::chrono::milliseconds(100));
}

// Rounds first_round..rounds until a stop, a failed result write, or no node alive; returns the
// last round run. An early end leaves its reason in stop_reason.
uint32_t ServerCore::RunRounds(const std::function<void(uint32_t)>& run_round) {
  uint32_t done = first_round - 1;
  for (uint32_t r = first_round; r <= core.last_round; ++r) {
    if (stop_flag->load()) {
      stop_reason = "stopped by a signal (SIGINT/SIGTERM) before " + core.round_name + " " + std::to_string(r);
      break;
    }
    if (Status st = RecordError(); !st.ok()) {
      stop_reason = "results could not be written: " + st.message();
      break;
    }
    if (registry.alive_count() == 0) {
      stop_reason = "no node is alive before " + core.round_name + " " + std::to_string(r) + rounds.LastFailures();
      break;
    }
    run_round(r);
    done = r;
  }
  if (!stop_reason.empty()) spdlog::error("the run ends early: {}", stop_reason);
  return done;
}

// What the run's summary.json says of how it ended: complete, stopped (by a signal), or failed.
json ServerCore::Outcome(uint32_t done, uint64_t aggregated_rounds) const {
  std::string status = "complete";
  if (stop_flag->load()) status = "stopped";
  else if (!stop_reason.empty() || done < core.last_round || (core.last_round > 0 && aggregated_rounds == 0)) status = "failed";
  std::string reason = stop_reason;
  if (reason.empty() && status == "failed") reason = "no round aggregated an update (see failed_nodes in metrics.jsonl)";
  if (reason.empty() && status == "stopped") reason = "stopped by a signal (SIGINT/SIGTERM)";
  return {{"status", status}, {"stop_reason", reason.empty() ? json(nullptr) : json(reason)},
          {"rounds_aggregated", aggregated_rounds}, {"resumed_from_round", first_round > 1 ? json(first_round - 1) : json(nullptr)}};
}

json ServerCore::DroppedJson() const {
  const auto& s = stats;
  return {{"malformed", s.malformed},
          {"oversize", s.oversize},     {"bad_version", s.bad_version},
          {"bad_tensor", s.bad_tensor}, {"unexpected", s.unexpected},
          {"unknown_node", s.unknown_node}, {"handshake_failed", net.stats().handshake_failed},
          {"refused_connections", net.stats().refused_connections},
          {"refused_keys", net.stats().refused_keys},
          {"rejected_joins", s.rejected_joins}, {"capped_samples", s.capped_samples}};
}

}  // namespace edgebed
