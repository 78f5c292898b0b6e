// The server in-process with two real nodes (threads running the node runtime) and hostile peers:
// raw TCP garbage, malformed frames, a wrong version, unknown senders, oversized frames, and a
// joined node that sends a wrong shape, then NaN, then a good update, then vanishes mid-round.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <functional>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include <sstream>

#include "codecs/rng.h"
#include "codecs/zmq_wire.h"
#include "node/node_runtime.h"
#include "server/server.h"

using namespace edgebed;
using namespace std::chrono_literals;

namespace {

int PortOf(const std::string& ep) { return std::stoi(ep.substr(ep.rfind(':') + 1)); }

// Sends bytes that are not ZeroMQ at all over a plain TCP connection.
void SendRawTcp(int port, const std::string& bytes) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  (void)!write(fd, bytes.data(), bytes.size());
  std::this_thread::sleep_for(200ms);
  close(fd);
}

// Waits for one Envelope on a DEALER; false on timeout.
bool Recv(zmq::socket_t& s, wire::Envelope* env, std::chrono::milliseconds timeout = 5000ms) {
  zmq::pollitem_t it[] = {{s.handle(), 0, ZMQ_POLLIN, 0}};
  zmq::poll(it, 1, timeout);
  if (!(it[0].revents & ZMQ_POLLIN)) return false;
  zmq::message_t m;
  (void)s.recv(m);
  return wire::Decode(m.data(), m.size(), 64 << 20, env).ok();
}

std::vector<nlohmann::json> ReadMetrics(const std::string& dir) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(dir + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

// A hand-driven peer: a DEALER with routing id `id`, connected to the server.
zmq::socket_t Dealer(zmq::context_t& ctx, const std::string& endpoint, const std::string& id) {
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::routing_id, id);
  s.set(zmq::sockopt::linger, 0);
  s.connect(endpoint);
  return s;
}

// Sends join as node `id` with `index`, checks that the server accepts it and returns its join_ack.
wire::JoinAck JoinAs(zmq::socket_t& s, const std::string& id, uint32_t index) {
  wire::Envelope j;
  j.mutable_join()->set_node_id(id);
  j.mutable_join()->set_node_index(index);
  wire::SendEnvelope(s, j);
  wire::Envelope ack;
  REQUIRE(Recv(s, &ack));
  REQUIRE(ack.join_ack().accepted());
  return ack.join_ack();
}

// A real node (the node runtime) in a thread, until the server shuts the run down.
std::thread RealNode(const std::string& endpoint, uint32_t index) {
  return std::thread([endpoint, index] {
    NodeOptions o;
    o.server = endpoint;
    o.index = index;
    RunNode(o);
  });
}

// A server running in a thread on a small logreg federation; `overrides` add to the common ones.
// Polls `done` until it holds; false after `limit` (an event that never comes, not a slow machine).
bool WaitUntil(const std::function<bool()>& done, std::chrono::seconds limit = std::chrono::seconds(60)) {
  for (const auto until = std::chrono::steady_clock::now() + limit; std::chrono::steady_clock::now() < until;
       std::this_thread::sleep_for(std::chrono::milliseconds(10)))
    if (done()) return true;
  return done();
}

struct RunningServer {
  std::string out, endpoint;
  std::unique_ptr<Server> server;
  Status status = Status::Unavailable("not run");
  std::thread thread;

  RunningServer(const std::string& tag, const std::vector<std::string>& overrides) {
    out = std::filesystem::temp_directory_path() / ("edgebed-" + tag + "-" + std::to_string(getpid()));
    std::filesystem::remove_all(out);
    std::vector<std::string> all = {"model.name=logreg", "data.partition=iid", "server.threads=1",
                                    "output_dir=\"" + out + "\""};
    all.insert(all.end(), overrides.begin(), overrides.end());
    auto sc = ParseScenario(DefaultScenarioText(), all, "test");
    REQUIRE(sc.ok());
    auto created = Server::Create(sc.value());
    REQUIRE(created.ok());
    server = std::move(created.value());
    auto ep = server->Bind();
    REQUIRE(ep.ok());
    endpoint = ep.value();
    thread = std::thread([this] { status = server->Run(); });
  }
  void Join() { thread.join(); }
  ~RunningServer() {
    if (thread.joinable()) thread.join();
    std::filesystem::remove_all(out);
  }
};

}  // namespace

TEST_CASE("garbage and broken nodes are logged and dropped; the run finishes unharmed") {
  RunningServer rs("server-test", {"data.train_limit=3000", "data.test_limit=500", "federation.nodes=3",
                                   "federation.rounds=5", "federation.min_quorum=0.3", "server.liveness_timeout_s=2.0",
                                   "server.round_deadline_s=60.0", "server.max_frame_mb=1.0"});
  const std::string& out = rs.out;
  Server* server = rs.server.get();
  const std::string& endpoint = rs.endpoint;

  zmq::context_t ctx(1);
  auto dealer = [&](const std::string& id) { return Dealer(ctx, endpoint, id); };

  // 1. Random bytes on the TCP port: not even ZeroMQ.
  Rng rng = MakeRng(1, "garbage");
  std::string junk(512, '\0');
  for (auto& c : junk) c = static_cast<char>(rng());
  SendRawTcp(PortOf(endpoint), junk);

  // 2. ZeroMQ frames that are not Envelopes, cut short, of another version, or several frames.
  auto bad = dealer("junk-peer");
  bad.send(zmq::buffer(junk.substr(0, 100)));
  wire::Envelope reply;
  REQUIRE(Recv(bad, &reply));
  CHECK(reply.error().code() == wire::MALFORMED);

  wire::Envelope join;
  join.mutable_join()->set_node_id("junk-peer");
  std::string bytes;
  REQUIRE(wire::Encode(join, &bytes).ok());
  bad.send(zmq::buffer(bytes.substr(0, bytes.size() - 4)));  // truncated
  REQUIRE(Recv(bad, &reply));
  CHECK(reply.error().code() == wire::MALFORMED);

  join.set_version(7);
  std::string v7;
  join.SerializeToString(&v7);
  bad.send(zmq::buffer(v7));
  REQUIRE(Recv(bad, &reply));
  CHECK(reply.error().code() == wire::BAD_VERSION);
  CHECK(reply.error().message().find("version 7") != std::string::npos);

  bad.send(zmq::str_buffer("a"), zmq::send_flags::sndmore);
  bad.send(zmq::str_buffer("b"));
  REQUIRE(Recv(bad, &reply));
  CHECK(reply.error().code() == wire::MALFORMED);

  wire::Envelope fit;
  fit.mutable_fit_res()->set_round(1);
  wire::SendEnvelope(bad, fit);
  REQUIRE(Recv(bad, &reply));
  CHECK(reply.error().code() == wire::UNKNOWN_NODE);

  // 3. Frames over server.max_frame_mb = 1: up to twice the limit they are refused with an Error
  //    naming the limit; beyond that ZeroMQ cuts the connection before buffering the frame whole.
  auto big = dealer("big-peer");
  big.send(zmq::buffer(std::string(3 << 19, 'x')));
  REQUIRE(Recv(big, &reply));
  CHECK(reply.error().code() == wire::OVERSIZE);
  CHECK(reply.error().message().find("exceeds the limit of 1048576 bytes") != std::string::npos);
  auto huge = dealer("huge-peer");
  huge.send(zmq::buffer(std::string(3 << 20, 'x')));

  // 4. A join with an out-of-range index is refused with the range.
  auto stray = dealer("node-77");
  wire::Envelope j77;
  j77.mutable_join()->set_node_id("node-77");
  j77.mutable_join()->set_node_index(77);
  wire::SendEnvelope(stray, j77);
  REQUIRE(Recv(stray, &reply));
  CHECK_FALSE(reply.join_ack().accepted());
  CHECK(reply.join_ack().reason().find("out of range [0, 2]") != std::string::npos);

  // 5. Two real nodes, and a joined node (index 2) that misbehaves round by round.
  std::vector<std::thread> nodes;
  for (uint32_t i = 0; i < 2; ++i) nodes.push_back(RealNode(endpoint, i));
  auto rogue = dealer("node-2");
  wire::Envelope j2;
  j2.mutable_join()->set_node_id("node-2");
  j2.mutable_join()->set_node_index(2);
  wire::SendEnvelope(rogue, j2);
  REQUIRE(Recv(rogue, &reply));
  REQUIRE(reply.join_ack().accepted());
  wire::Envelope ready;
  ready.mutable_heartbeat()->set_round(0);
  wire::SendEnvelope(rogue, ready);
  std::vector<std::string> errors_seen;
  for (uint32_t round = 1; round <= 5; ++round) {
    wire::Envelope ins;
    REQUIRE(Recv(rogue, &ins, 60000ms));
    REQUIRE(ins.has_fit_ins());
    CHECK(ins.fit_ins().round() == round);
    ParamSet global;
    REQUIRE(wire::FromTensors(ins.fit_ins().params(), "fit_ins.params", nullptr, &global).ok());
    if (round == 5) break;  // vanish mid-round: no answer, no heartbeat
    wire::Envelope res;
    auto* fr = res.mutable_fit_res();
    fr->set_round(round);
    fr->set_num_samples(1000);
    ParamSet update = ParamSet::Zeros(global.specs);
    if (round == 1) update.specs[0].shape = {5, 784};  // wrong shape (and size)
    if (round == 2) update.flat[17] = std::nanf("");    // NaN
    if (round == 1) update.flat.resize(5 * 784 + 10);
    wire::Attachments att;  // rounds 2 and 3: the update's data in a frame of their own, as nodes send it
    if (round == 2 || round == 3)
      wire::AttachTensors(update.specs, std::make_shared<const std::vector<float>>(update.flat), fr->mutable_update(), &att);
    else
      wire::ToTensors(update, fr->mutable_update());
    if (round >= 3) {  // as if a channel process carried it: a report and erased ranges
      wire::LinkReport* l = fr->add_link();
      l->set_node_index(2);
      l->set_lost_packets(1);
      l->set_airtime_s(0.5);
      fr->add_erased(10);
      fr->add_erased(round == 3 ? 20 : 99999);  // round 4: a range beyond the update
    }
    wire::SendEnvelope(rogue, res, "", false, &att);
    if (round == 1 || round == 2 || round == 4) {
      REQUIRE(Recv(rogue, &reply));
      CHECK(reply.error().code() == wire::BAD_TENSOR);
      errors_seen.push_back(reply.error().message());
    }
  }
  for (auto& t : nodes) t.join();
  rs.Join();

  CHECK(rs.status.ok());
  REQUIRE(errors_seen.size() == 3);
  CHECK(errors_seen[2].find("fit_res.erased range [10, 99999) is outside [0, 7850]") != std::string::npos);
  CHECK(errors_seen[0].find("fit_res.update[0] '1.weight' has shape [5, 784], expected [10, 784]") != std::string::npos);
  CHECK(errors_seen[1].find("non-finite") != std::string::npos);
  const ServerStats& st = server->stats();
  CHECK(server->link_stats().handshake_failed >= 1);
  CHECK(st.malformed >= 3);
  CHECK(st.bad_version == 1);
  CHECK(st.unknown_node == 1);
  CHECK(st.bad_tensor == 3);
  CHECK(st.oversize == 1);
  CHECK(st.rejected_joins == 1);

  const auto rows = ReadMetrics(out);
  REQUIRE(rows.size() == 6);  // round 0 (initial model) + 5 rounds
  CHECK(rows[1]["participants"] == 2);
  CHECK(rows[1]["failures"] == 1);
  CHECK(rows[1]["failed_nodes"][0]["reason"].get<std::string>().find("bad update") != std::string::npos);
  CHECK(rows[2]["failures"] == 1);
  CHECK(rows[3]["participants"] == 3);
  CHECK(rows[3]["failures"] == 0);
  CHECK(rows[3]["lost_packets"] == 1);  // the relayed report reached the metrics
  CHECK(rows[3]["uplink_airtime_s"].get<double>() == doctest::Approx(0.5));
  CHECK(rows[4]["failures"] == 1);
  CHECK(rows[5]["participants"] == 2);
  CHECK(rows[5]["failed_nodes"][0]["reason"].get<std::string>().find("silent") != std::string::npos);
  CHECK(rows[5]["test_accuracy"].get<double>() > 0.6);  // logreg on 2,000 images still learned
  for (const auto& r : rows) CHECK(r["uplink_bytes"].get<uint64_t>() <= 4 * 40000);
  CHECK(std::filesystem::exists(out + "/final_model.pt"));
  CHECK(std::filesystem::exists(out + "/summary.json"));
}

TEST_CASE("a node whose connection closes before the rounds is let go at once, not waited for") {
  RunningServer rs("vanish-test", {"data.train_limit=2000", "data.test_limit=300", "federation.nodes=2",
                                   "federation.rounds=2", "federation.min_quorum=0.5", "server.liveness_timeout_s=2.0",
                                   "server.join_timeout_s=4.0"});
  const std::string& endpoint = rs.endpoint;
  {
    zmq::context_t ctx(1);
    zmq::socket_t ghost = Dealer(ctx, endpoint, "node-1");
    JoinAs(ghost, "node-1", 1);
  }  // the ghost's socket and context close: it is gone before any fit_ins reaches it
  REQUIRE(WaitUntil([&] { return rs.server->closed_connections() >= 1; }));  // the server has let it go
  std::thread node = RealNode(endpoint, 0);
  node.join();
  rs.Join();
  CHECK(rs.status.ok());
  const auto rows = ReadMetrics(rs.out);
  REQUIRE(rows.size() == 3);
  // Its connection's close freed it at once: never selected, its index free again.
  CHECK(rows[1]["selected"] == 1);
  CHECK(rows[1]["participants"] == 1);
  CHECK(rows[1]["failures"] == 0);
  CHECK(rows[2]["selected"] == 1);
  CHECK(rows[2]["participants"] == 1);
}

TEST_CASE("digital OTA: bad index vectors get a clear error and the honest node's rounds go on") {
  RunningServer rs("vq-test", {"data.train_limit=2000", "data.test_limit=300", "federation.nodes=2",
                               "federation.rounds=3", "federation.min_quorum=0.5", "server.liveness_timeout_s=5.0",
                               "channel.uplink=\"digital_ota\"", "channel.fading=\"none\"", "channel.snr_db=30.0",
                               "ota.decoder=\"amp_da\"", "ota.codebook_size=16", "ota.block_length=10"});
  zmq::context_t ctx(1);
  zmq::socket_t bad = Dealer(ctx, rs.endpoint, "node-1");
  JoinAs(bad, "node-1", 1);
  wire::Envelope in;
  wire::Envelope ready;
  ready.mutable_heartbeat()->set_round(0);
  wire::SendEnvelope(bad, ready);
  std::thread node = RealNode(rs.endpoint, 0);
  const size_t logreg = 784 * 10 + 10, blocks = (logreg + 9) / 10;
  std::vector<std::string> errors;
  for (uint32_t round = 1; round <= 3; ++round) {
    REQUIRE(Recv(bad, &in, 60000ms));
    REQUIRE(in.has_fit_ins());
    CHECK(in.fit_ins().vq().size() == 16);
    CHECK(in.fit_ins().vq().centroids_size() == 16 * 10);
    wire::Envelope res;
    auto* f = res.mutable_fit_res();
    f->set_round(round);
    f->set_num_samples(100);
    if (round == 1) {
      wire::ToTensors(ParamSet::Zeros({{"0.weight", {10, 784}}, {"0.bias", {10}}}), f->mutable_update());
    } else {
      for (size_t s = 0; s < (round == 2 ? blocks - 1 : blocks); ++s) f->add_vq_indices(round == 3 && s == 5 ? 16 : 0);
    }
    wire::SendEnvelope(bad, res);
    wire::Envelope err;
    REQUIRE(Recv(bad, &err));
    REQUIRE(err.has_error());
    CHECK(err.error().code() == wire::BAD_TENSOR);
    errors.push_back(err.error().message());
  }
  CHECK(errors[0].find("vq_indices") != std::string::npos);
  CHECK(errors[1].find("expected " + std::to_string(blocks)) != std::string::npos);
  CHECK(errors[2].find("allowed [0, 15]") != std::string::npos);
  node.join();
  rs.Join();
  CHECK(rs.status.ok());
  const auto rows = ReadMetrics(rs.out);
  REQUIRE(rows.size() == 4);
  for (size_t r = 1; r <= 3; ++r) {
    CHECK(rows[r]["participants"] == 1);
    CHECK(rows[r]["ota"]["active"] == 1);
    CHECK(rows[r]["aggregated"] == true);
  }
  CHECK(rows[3]["test_accuracy"].get<double>() > rows[0]["test_accuracy"].get<double>() + 0.2);
}

TEST_CASE("split learning: bottlenecks of the wrong width, shape or order get a clear error; the decoder keeps serving") {
  RunningServer rs("split-test", {"model.name=\"slimsplit\"", "data.train_limit=1000", "data.test_limit=200",
                                  "federation.nodes=2", "federation.rounds=1", "server.liveness_timeout_s=20.0",
                                  "training.momentum=0.9"});
  zmq::context_t ctx(1);
  zmq::socket_t bad = Dealer(ctx, rs.endpoint, "node-1");
  const wire::JoinAck ack = JoinAs(bad, "node-1", 1);
  REQUIRE(ack.has_split());
  CHECK(ack.split().widths_size() == 4);
  wire::Envelope ready;
  ready.mutable_heartbeat()->set_round(0);
  wire::SendEnvelope(bad, ready);
  std::thread node = RealNode(rs.endpoint, 0);
  wire::Envelope in;
  REQUIRE(Recv(bad, &in, 60000ms));
  REQUIRE(in.has_split_round());
  CHECK(in.split_round().round() == 1);
  CHECK(in.split_round().head_size() > 0);  // heads = average: everyone starts from the server's encoder

  // A forward of 2 samples at the given (width, channels, bytes) entries.
  auto forward = [&](std::vector<std::tuple<double, uint32_t, size_t>> entries, std::string labels = std::string(2, '\1')) {
    wire::Envelope f;
    auto* sf = f.mutable_split_forward();
    sf->set_round(1);
    sf->set_step(1);
    sf->set_samples(2);
    sf->set_labels(labels);
    for (const auto& [w, c, n] : entries) {
      auto* b = sf->add_bottleneck();
      b->set_width(w);
      b->set_channels(c);
      b->set_codes(std::string(n, '\x80'));
    }
    wire::SendEnvelope(bad, f);
    wire::Envelope reply;
    REQUIRE(Recv(bad, &reply, 20000ms));
    return reply;
  };
  std::vector<std::pair<wire::Envelope, std::string>> refused = {
      {forward({{0.3, 2, 2 * 98}}), "width = 0.3"},
      {forward({{0.5, 4, 100}}), "needs 2 x 4 x 7 x 7 = 392"},
      {forward({{0.5, 3, 2 * 196}}), "channels = 3 but width 0.500 has 4"},
      {forward({{0.25, 2, 2 * 98}, {1.0, 8, 2 * 392}}), "widest first"},
      {forward({{1.0, 8, 2 * 392}}, std::string(3, '\1')), "labels has 3 bytes"},
      {forward({{1.0, 8, 2 * 392}}, std::string("\1\x0c", 2)), "outside 0..9"},
      {forward({}), "bottleneck has 0 entries"},
  };
  for (const auto& [reply, what] : refused) {
    REQUIRE(reply.has_error());
    CHECK(reply.error().code() == wire::BAD_TENSOR);
    CHECK_MESSAGE(reply.error().message().find(what) != std::string::npos, reply.error().message());
  }
  // A good batch at two widths: gradients of the bottlenecks' shapes come back, at 8 bits (the
  // default split.gradient_bits) with a scale per sample. A second forward while the first waits
  // for its decoder step is refused; the first is still answered.
  wire::Envelope twice;
  {
    auto* sf = twice.mutable_split_forward();
    sf->set_round(1);
    sf->set_step(2);
    sf->set_samples(2);
    sf->set_labels(std::string(2, '\1'));
    auto* b = sf->add_bottleneck();
    b->set_width(1.0);
    b->set_channels(8);
    b->set_codes(std::string(2 * 392, '\x80'));
  }
  wire::Envelope good, second;
  {
    wire::Envelope f;
    *f.mutable_split_forward() = twice.split_forward();
    f.mutable_split_forward()->set_step(1);
    auto* b = f.mutable_split_forward()->add_bottleneck();
    b->set_width(0.25);
    b->set_channels(2);
    b->set_codes(std::string(2 * 98, '\x80'));
    wire::SendEnvelope(bad, f);
    wire::SendEnvelope(bad, twice);
    wire::Envelope a, b2;
    REQUIRE(Recv(bad, &a, 20000ms));
    REQUIRE(Recv(bad, &b2, 20000ms));
    (a.has_split_backward() ? good : second) = a;
    (a.has_split_backward() ? second : good) = b2;
  }
  REQUIRE(second.has_error());
  CHECK(second.error().message().find("step 2 came while step 1 of the same node waits for the decoder") != std::string::npos);
  REQUIRE(good.has_split_backward());
  CHECK(good.split_backward().grad_size() == 0);
  REQUIRE(good.split_backward().grad8_size() == 2);
  CHECK(good.split_backward().grad8(0).codes().size() == 2 * 8 * 49);
  CHECK(good.split_backward().grad8(1).codes().size() == 2 * 2 * 49);
  REQUIRE(good.split_backward().grad8(1).scales_size() == 2);
  CHECK(good.split_backward().grad8(1).scales(0) > 0.0f);
  CHECK(std::isfinite(good.split_backward().loss()));
  // A done with an encoder of the wrong layout is refused and counts as this node's failure.
  wire::Envelope done;
  done.mutable_split_done()->set_round(1);
  wire::ToTensors(ParamSet::Zeros({{"conv1_weight", {3, 3}}}), done.mutable_split_done()->mutable_head());
  wire::SendEnvelope(bad, done);
  wire::Envelope err;
  REQUIRE(Recv(bad, &err, 20000ms));
  REQUIRE(err.has_error());
  CHECK(err.error().message().find("split_done.head") != std::string::npos);

  node.join();
  rs.Join();
  CHECK(rs.status.ok());
  const auto rows = ReadMetrics(rs.out);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0]["participants"] == 1);  // the real node's round counted; the bad one failed
  CHECK(rows[0]["failures"] == 1);
  CHECK(rows[0]["accuracy_by_width"].size() == 4);
  CHECK(rows[0]["test_accuracy"].get<double>() > 0.3);
  std::ifstream summary_in(rs.out + "/summary.json");
  const auto summary = nlohmann::json::parse(summary_in);
  CHECK(summary["dropped"]["bad_tensor"].get<int>() >= 8);
  CHECK(summary["widths"][0]["bytes_per_sample"] == 98);
}

TEST_CASE("GNN shards: reports out of turn, empty endpoints and federated messages are refused by name; a bad epoch report stops the run cleanly") {
  RunningServer rs("gnn-test", {"model.name=\"gnn\"", "gnn.graph.vertices=400", "gnn.layers=2", "gnn.hidden=8",
                                "gnn.epochs=3", "gnn.chunks=2", "server.liveness_timeout_s=20.0"});
  zmq::context_t ctx(1);
  zmq::socket_t bad = Dealer(ctx, rs.endpoint, "node-1");
  const wire::JoinAck ack = JoinAs(bad, "node-1", 1);
  REQUIRE(ack.has_gnn());
  CHECK(ack.gnn().shard() == 1);
  CHECK(ack.gnn().mode() == "pipe");
  auto expect_error = [&](wire::Envelope& e, wire::ErrorCode code, const std::string& what) {
    wire::SendEnvelope(bad, e);
    wire::Envelope reply;
    REQUIRE(Recv(bad, &reply));
    REQUIRE(reply.has_error());
    CHECK(reply.error().code() == code);
    CHECK_MESSAGE(reply.error().message().find(what) != std::string::npos, reply.error().message());
  };
  wire::Envelope early;
  early.mutable_gnn_epoch_done()->set_epoch(1);
  expect_error(early, wire::UNEXPECTED, "gnn_epoch_done outside the node's epoch");
  wire::Envelope empty;
  empty.mutable_gnn_ready();
  expect_error(empty, wire::BAD_TENSOR, "gnn_ready.endpoint is empty");
  wire::Envelope fit;
  fit.mutable_fit_res()->set_round(1);
  expect_error(fit, wire::UNEXPECTED, "in a GNN run");

  std::thread node = RealNode(rs.endpoint, 0);  // stage 0, a real shard
  wire::Envelope ready;
  ready.mutable_gnn_ready()->set_endpoint("tcp://127.0.0.1:9");  // nobody listens: stage 0's sends wait in its queue
  wire::SendEnvelope(bad, ready);
  wire::Envelope in;
  REQUIRE(Recv(bad, &in, 60000ms));
  REQUIRE(in.has_gnn_start());
  CHECK(in.gnn_start().peers_size() == 2);
  REQUIRE(Recv(bad, &in, 60000ms));
  REQUIRE(in.has_gnn_epoch());
  CHECK(in.gnn_epoch().epoch() == 1);
  wire::Envelope wrong;
  wrong.mutable_gnn_epoch_done()->set_epoch(7);
  wire::SendEnvelope(bad, wrong);
  rs.Join();
  node.join();  // stage 0 was waiting for gradients: it leaves on the server's shutdown
  CHECK(!rs.status.ok());
  std::ifstream f(rs.out + "/summary.json");
  const auto summary = nlohmann::json::parse(f);
  const std::string why = summary["stopped"].get<std::string>();
  CHECK_MESSAGE(why.find("node-1 (stage 1) refused its epoch report: gnn_epoch_done.epoch = 7 is not the epoch in progress (1)") !=
                    std::string::npos, why);
  CHECK(summary["epochs_completed"] == 0);
  CHECK(rs.server->stats().bad_tensor >= 2);
  CHECK(rs.server->stats().unexpected >= 2);
}

TEST_CASE("GNN shards: a peer's garbage frames are dropped, a tensor of the wrong shape fails the epoch by name") {
  RunningServer rs("gnn-peer-test", {"model.name=\"gnn\"", "gnn.graph.vertices=400", "gnn.layers=2", "gnn.hidden=8",
                                     "gnn.epochs=3", "gnn.chunks=2", "server.liveness_timeout_s=20.0"});
  zmq::context_t ctx(1);
  zmq::socket_t bad = Dealer(ctx, rs.endpoint, "node-1");  // claims stage 1
  JoinAs(bad, "node-1", 1);
  std::thread node = RealNode(rs.endpoint, 0);
  zmq::socket_t pull(ctx, zmq::socket_type::pull);  // where stage 0's embeddings arrive
  pull.set(zmq::sockopt::linger, 0);
  pull.bind("tcp://127.0.0.1:*");
  wire::Envelope ready;
  ready.mutable_gnn_ready()->set_endpoint(pull.get(zmq::sockopt::last_endpoint));
  wire::SendEnvelope(bad, ready);
  wire::Envelope start, epoch;
  REQUIRE(Recv(bad, &start, 60000ms));
  REQUIRE(start.has_gnn_start());
  REQUIRE(start.gnn_start().peers_size() == 2);
  REQUIRE(Recv(bad, &epoch, 60000ms));
  REQUIRE(epoch.has_gnn_epoch());
  // Stage 0 streams its chunks' embeddings to us, as counted frames.
  zmq::message_t first;
  REQUIRE(pull.recv(first));
  wire::Envelope emb;
  REQUIRE(wire::Decode(first.data(), first.size(), 64 << 20, &emb).ok());
  REQUIRE(emb.has_gnn_tensor());
  CHECK(emb.gnn_tensor().kind() == 0);
  CHECK(emb.gnn_tensor().from() == 0);
  CHECK(emb.gnn_tensor().dim() == 8);
  CHECK(emb.gnn_tensor().values().size() == emb.gnn_tensor().rows() * 8u * 4u);
  // Into stage 0's peer socket: garbage, a tensor of an unknown kind, then chunk 0's gradients in the wrong shape.
  zmq::socket_t to0(ctx, zmq::socket_type::push);
  to0.set(zmq::sockopt::linger, 1000);
  to0.connect(start.gnn_start().peers(0));
  (void)to0.send(zmq::buffer(std::string("not an envelope")), zmq::send_flags::none);
  auto tensor = [&](uint32_t kind, uint32_t rows) {
    wire::Envelope t;
    auto* g = t.mutable_gnn_tensor();
    g->set_kind(kind);
    g->set_epoch(1);
    g->set_step(0);
    g->set_from(1);
    g->set_rows(rows);
    g->set_dim(8);
    g->set_values(std::string(rows * 8u * 4u, '\0'));
    wire::SendEnvelope(to0, t);
  };
  tensor(9, 3);
  tensor(1, 3);
  rs.Join();
  node.join();
  CHECK(!rs.status.ok());
  std::ifstream f(rs.out + "/summary.json");
  const std::string why = nlohmann::json::parse(f)["stopped"].get<std::string>();
  CHECK_MESSAGE(why.find("node-0 (stage 0) unavailable: epoch 1: gradients from shard 1 is 3 x 8 (24 values); expected") !=
                    std::string::npos, why);
}

TEST_CASE("GNN shards: a node that cannot build its shard stops the run at once, naming why") {
  RunningServer rs("gnn-setup-test", {"model.name=\"gnn\"", "gnn.graph.kind=\"knn\"", "gnn.graph.vertices=300",
                                      "gnn.layers=2", "gnn.hidden=8", "server.join_timeout_s=1000000.0"});
  // The join timeout is out of reach: were the run to wait for joins instead of stopping at the
  // setup failure, this test would hang until CTest's timeout, whatever the machine's load.
  std::thread node([&] {
    NodeOptions o;
    o.server = rs.endpoint;
    o.index = 0;
    o.data_dir = "/nonexistent-fashion-mnist";  // this node has no copy of the images the kNN graph needs
    RunNode(o);
  });
  node.join();
  rs.Join();
  CHECK(!rs.status.ok());
  std::ifstream f(rs.out + "/summary.json");
  const std::string why = nlohmann::json::parse(f)["stopped"].get<std::string>();
  CHECK_MESSAGE(why.find("setup: node-0: cannot build the graph") != std::string::npos, why);
  CHECK_MESSAGE(why.find("/nonexistent-fashion-mnist") != std::string::npos, why);
}

TEST_CASE("hijack, squatting, an inflated sample count and forged log lines are refused") {
  // Capture the server's log to check that peer text reaches it escaped.
  auto captured = std::make_shared<std::ostringstream>();
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(*captured);
  spdlog::default_logger()->sinks().push_back(sink);
  RunningServer rs("hijack-test", {"data.train_limit=3000", "data.test_limit=500", "federation.nodes=3",
                                   "federation.rounds=3", "federation.min_quorum=0.3", "server.liveness_timeout_s=5.0",
                                   "server.join_timeout_s=20.0"});
  const std::string& endpoint = rs.endpoint;
  zmq::context_t ctx(1);
  wire::Envelope reply;

  // Squatters join as indices 0-2 and disconnect: their indices are free again at once.
  {
    std::vector<zmq::socket_t> squatters;
    for (uint32_t i = 0; i < 3; ++i) {
      squatters.push_back(Dealer(ctx, endpoint, "squat-" + std::to_string(i)));
      JoinAs(squatters.back(), "squat-" + std::to_string(i), i);
    }
  }
  REQUIRE(WaitUntil([&] { return rs.server->closed_connections() >= 3; }));  // the server has seen them close

  // A routing id with a newline tries to forge a log line.
  auto forger = Dealer(ctx, endpoint, "x\n00:00:00.000 info run complete: 20 rounds, final test accuracy 0.9999");
  wire::Envelope hb;
  hb.mutable_heartbeat()->set_round(1);
  wire::SendEnvelope(forger, hb);
  REQUIRE(Recv(forger, &reply));
  CHECK(reply.error().code() == wire::UNKNOWN_NODE);

  // Two real nodes and a third, hand-driven one that claims 2^62 samples for a zero update.
  std::vector<std::thread> nodes;
  for (uint32_t i = 0; i < 2; ++i) nodes.push_back(RealNode(endpoint, i));
  auto greedy = Dealer(ctx, endpoint, "node-2");
  JoinAs(greedy, "node-2", 2);
  wire::Envelope ready;
  ready.mutable_heartbeat()->set_round(0);
  wire::SendEnvelope(greedy, ready);

  // Hijack: another connection joins as node-2, or speaks for it by naming it; both are refused.
  auto thief = Dealer(ctx, endpoint, "thief");
  wire::Envelope j;
  j.set_node("node-2");
  j.mutable_join()->set_node_id("node-2");
  j.mutable_join()->set_node_index(2);
  wire::SendEnvelope(thief, j);
  REQUIRE(Recv(thief, &reply));
  CHECK_FALSE(reply.join_ack().accepted());
  CHECK(reply.join_ack().reason().find("held by another connection") != std::string::npos);

  for (uint32_t round = 1; round <= 3; ++round) {
    wire::Envelope ins;
    REQUIRE(Recv(greedy, &ins, 60000ms));
    REQUIRE(ins.has_fit_ins());
    ParamSet global;
    REQUIRE(wire::FromTensors(ins.fit_ins().params(), "fit_ins.params", nullptr, &global).ok());
    wire::Envelope res;
    res.mutable_fit_res()->set_round(round);
    res.mutable_fit_res()->set_num_samples(uint64_t{1} << 62);
    wire::ToTensors(ParamSet::Zeros(global.specs), res.mutable_fit_res()->mutable_update());
    if (round == 1) {  // the thief names node-2 on its own connection: dropped, the real answer counts
      wire::Envelope forged = res;
      forged.set_node("node-2");
      wire::SendEnvelope(thief, forged);
    }
    wire::SendEnvelope(greedy, res);
  }
  for (auto& t : nodes) t.join();
  rs.Join();
  CHECK(rs.status.ok());
  const auto& st = rs.server->stats();
  CHECK(st.capped_samples == 3);
  CHECK(st.rejected_joins == 1);
  CHECK(st.unknown_node >= 2);  // the forger's heartbeat and the thief's forged fit_res
  const auto rows = ReadMetrics(rs.out);
  REQUIRE(rows.size() == 4);
  CHECK(rows[3]["participants"] == 3);
  // Capped to its partition's 1,000 samples, the zero update weighs a third: the model still learns.
  // Taken at 2^62 samples it would have pinned the model to its initial weights.
  CHECK(rows[3]["test_accuracy"].get<double>() > rows[0]["test_accuracy"].get<double>() + 0.3);
  spdlog::default_logger()->sinks().pop_back();
  const std::string log = captured->str();
  CHECK(log.find("\\x0a00:00:00.000 info run complete") != std::string::npos);  // escaped, on the line it came with
  CHECK(log.find("\n00:00:00.000 info run complete") == std::string::npos);
  CHECK(log.find("claims fit_res.num_samples = 4611686018427387904, its partition holds 1000") != std::string::npos);
}

TEST_CASE("a node declared failed for silence joins again and is selected again") {
  RunningServer rs("rejoin-test", {"data.train_limit=2000", "data.test_limit=300", "federation.nodes=2",
                                   "federation.rounds=30", "federation.min_quorum=0.5", "server.liveness_timeout_s=1.0",
                                   "server.join_timeout_s=20.0", "training.local_epochs=40"});  // rounds of ~0.2 s
  const std::string& endpoint = rs.endpoint;
  zmq::context_t ctx(1);
  std::thread node = RealNode(endpoint, 0);
  auto sleeper = Dealer(ctx, endpoint, "node-1");
  JoinAs(sleeper, "node-1", 1);
  wire::Envelope ready, reply, ins;
  ready.mutable_heartbeat()->set_round(0);
  wire::SendEnvelope(sleeper, ready);
  REQUIRE(Recv(sleeper, &ins, 60000ms));
  REQUIRE(ins.fit_ins().round() == 1);
  std::this_thread::sleep_for(1600ms);  // as if SIGSTOPped: past the liveness timeout (rounds go on without it)
  wire::Envelope hb;
  hb.mutable_heartbeat()->set_round(1);
  wire::SendEnvelope(sleeper, hb);
  // The server no longer knows it (round 1 failed it); it joins again under its identity.
  bool rejoined = false;
  for (int i = 0; i < 10 && !rejoined; ++i) {
    REQUIRE(Recv(sleeper, &reply, 20000ms));
    if (reply.has_error() && reply.error().code() == wire::UNKNOWN_NODE) {
      JoinAs(sleeper, "node-1", 1);
      wire::SendEnvelope(sleeper, ready);
      rejoined = true;
    }
  }
  REQUIRE(rejoined);
  uint32_t selected_again = 0;
  while (Recv(sleeper, &ins, 20000ms) && !ins.has_shutdown()) {
    if (!ins.has_fit_ins()) continue;
    selected_again = ins.fit_ins().round();
    ParamSet global;
    REQUIRE(wire::FromTensors(ins.fit_ins().params(), "fit_ins.params", nullptr, &global).ok());
    wire::Envelope res;
    res.mutable_fit_res()->set_round(selected_again);
    res.mutable_fit_res()->set_num_samples(10);
    wire::ToTensors(ParamSet::Zeros(global.specs), res.mutable_fit_res()->mutable_update());
    wire::SendEnvelope(sleeper, res);
  }
  node.join();
  rs.Join();
  CHECK(selected_again == 30);
  const auto rows = ReadMetrics(rs.out);
  REQUIRE(rows.size() == 31);
  CHECK(rows[1]["failed_nodes"][0]["reason"].get<std::string>().find("silent") != std::string::npos);
  CHECK(rows.back()["participants"] == 2);
}
