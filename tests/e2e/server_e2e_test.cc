// The server as a hostile peer or a faulty machine would meet it, with real processes: a server
// SIGKILLed at a random round and resumed, a node SIGSTOPped past the liveness timeout, 1,100 idle
// connections against a 1,024-descriptor limit, shell metacharacters in the scenario, a full disk,
// and a partition that cannot work.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "codecs/rng.h"
#include "tests/e2e/e2e_run.h"

using json = nlohmann::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string TempDir(const std::string& tag) { return edgebed::e2e::TempDir("srv", tag); }
using edgebed::e2e::Metrics;
using edgebed::e2e::Slurp;
using edgebed::e2e::Summary;

using edgebed::e2e::RunArgs;
using edgebed::e2e::Start;
using edgebed::e2e::Wait;


std::vector<std::string> RunCmd(const std::string& out, std::vector<std::string> extra) {
  std::vector<std::string> a = {EDGEBED_BINARY, "run", std::string(EDGEBED_SOURCE_DIR) + "/scenarios/quick.toml",
                                "--set", "output_dir=\"" + out + "\""};
  for (auto& e : extra) a.insert(a.end(), {"--set", e});
  return a;
}

// Waits (up to 300 s) until `pred` holds.
template <typename F>
bool WaitFor(F pred) {
  for (int i = 0; i < 3000; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

// `edgebed server` on `scenario` (a file in scenarios/) with `set` and `extra`, its endpoint written to <out>/ep.
std::vector<std::string> ServerArgs(const std::string& scenario, const std::string& out, const std::vector<std::string>& set,
                                    const std::vector<std::string>& extra = {}) {
  std::vector<std::string> a = {EDGEBED_BINARY, "server", "--scenario", std::string(EDGEBED_SOURCE_DIR) + "/scenarios/" + scenario,
                                "--set", "output_dir=\"" + out + "\"", "--endpoint-file", out + "/ep"};
  for (const auto& s : set) a.insert(a.end(), {"--set", s});
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

// The endpoint the server wrote to <out>/ep, once it is there.
std::string AwaitEndpoint(const std::string& out) {
  REQUIRE(WaitFor([&] { return fs::exists(out + "/ep"); }));
  std::string ep = Slurp(out + "/ep");
  return ep.substr(0, ep.find('\n'));
}

// The pid of the process whose command line holds every one of `parts`, or -1.
pid_t FindProcess(const std::vector<std::string>& parts) {
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmd = Slurp(e.path().string() + "/cmdline");
    for (auto& c : cmd) if (c == '\0') c = ' ';
    bool all = true;
    for (const auto& p : parts) all &= cmd.find(p) != std::string::npos;
    if (all) return std::stoi(name);
  }
  return -1;
}

// A run killed and resumed: scenarios/<scenario> with `set` (which fixes the rounds).
struct ResumeCase {
  std::string tag, scenario;
  std::vector<std::string> set;
  uint32_t rounds = 5;                // the server is SIGKILLed after a random round of 1..rounds-2
  uint32_t first_row = 0;             // 0: a row for the initial model (federated); 1: none (split)
  std::vector<std::string> columns;   // compared row by row
  std::vector<std::string> files;     // compared byte by byte
};

// Runs the case uninterrupted and again with the server SIGKILLed after a seeded random round and
// `edgebed run --resume`: every row once, with the uninterrupted values, and the same final files.
void ResumeMatchesUninterrupted(const ResumeCase& c) {
  const std::string ref = TempDir(c.tag + "-ref"), out = TempDir(c.tag);
  fs::remove_all(ref);
  fs::remove_all(out);
  auto cmd = [&](const std::string& dir) {
    std::vector<std::string> a = {EDGEBED_BINARY, "run", std::string(EDGEBED_SOURCE_DIR) + "/scenarios/" + c.scenario,
                                  "--set", "output_dir=\"" + dir + "\"", "--set", "federation.rounds=" + std::to_string(c.rounds)};
    for (const auto& e : c.set) a.insert(a.end(), {"--set", e});
    return a;
  };
  REQUIRE_MESSAGE(RunArgs(cmd(ref), ref + ".log") == 0, Slurp(ref + ".log"));

  // The round to kill after: seeded, and named in the messages so that a failure can be replayed.
  const uint64_t seed = static_cast<uint64_t>(getpid());
  edgebed::Rng rng = edgebed::MakeRng(seed, ("kill-round-" + c.tag).c_str());
  const uint32_t kill_after = 1 + static_cast<uint32_t>(rng() % (c.rounds - 2));
  INFO(c.tag, ": killed after round ", kill_after, " (seed ", seed, ")");
  const pid_t launcher = Start(cmd(out), out + ".log");
  REQUIRE(WaitFor([&] {
    const auto rows = fs::exists(out + "/metrics.jsonl") ? Metrics(out) : std::vector<json>{};
    // The row of a round comes before its checkpoint: wait for a checkpoint too, so there is one to resume.
    return !rows.empty() && rows.back()["round"].get<uint32_t>() >= kill_after && fs::exists(out + "/server.pid") &&
           fs::exists(out + "/checkpoint.bin");
  }));
  REQUIRE(kill(std::stoi(Slurp(out + "/server.pid")), SIGKILL) == 0);
  CHECK(Wait(launcher) != 0);  // the run did not complete
  // The interrupted run has its report: the rows so far, drawn, and said to be interrupted.
  CHECK(Slurp(out + "/report.html").find("interrupted (the server ended without writing summary.json)") != std::string::npos);
  edgebed::e2e::CheckReport(out, {c.columns.front() == "test_accuracy" ? "accuracy" : "accuracy_by_width"});

  REQUIRE_MESSAGE(RunArgs({EDGEBED_BINARY, "run", "--resume", out}, out + ".log") == 0, Slurp(out + ".log"));
  const auto a = Metrics(ref), b = Metrics(out);
  const size_t rows = c.rounds + 1 - c.first_row;
  REQUIRE(a.size() == rows);
  REQUIRE(b.size() == rows);  // none twice
  for (size_t r = 0; r < rows; ++r) {
    CHECK(b[r]["round"] == r + c.first_row);
    for (const auto& col : c.columns) CHECK_MESSAGE(b[r][col] == a[r][col], col << " of round " << r + c.first_row);
  }
  for (const auto& f : c.files) CHECK_MESSAGE(Slurp(out + "/" + f) == Slurp(ref + "/" + f), f);
  const json s = Summary(out);
  CHECK(s["status"] == "complete");
  // The round's row is written before its checkpoint: a kill between the two resumes from the round
  // before and plays the round again (the rows above show it once, with the uninterrupted values).
  CHECK(s["resumed_from_round"].get<uint32_t>() + 1 >= kill_after);
  for (const auto& d : {ref, out}) {
    fs::remove_all(d);
    fs::remove(d + ".log");
  }
}

const std::vector<std::string> kFederatedColumns = {"test_accuracy", "test_loss"};

}  // namespace

TEST_CASE("a server SIGKILLed at a random round and resumed ends with the uninterrupted run's model (FedYogi: its moments are in the checkpoint)") {
  ResumeMatchesUninterrupted({"resume", "quick.toml", {"data.partition=\"iid\"", "federation.strategy=\"fedyogi\"",
                              "federation.server_lr=0.01"}, 6, 0, kFederatedColumns, {"final_model.pt"}});
}

TEST_CASE("resumed runs whose nodes carry state across rounds equal the uninterrupted ones: SCAFFOLD's c_i, digital OTA's error feedback") {
  // Every node restarts with the resumed run; what it carries comes back from <output_dir>/node-state,
  // for node processes and for the simulated nodes of a node host alike.
  ResumeMatchesUninterrupted({"resume-scaffold", "quick.toml", {"federation.strategy=\"scaffold\"", "federation.nodes=4",
                              "population.simulated=2"}, 5, 0, kFederatedColumns, {"final_model.pt"}});
  ResumeMatchesUninterrupted({"resume-ota", "quick.toml", {"federation.nodes=3", "channel.uplink=\"digital_ota\"",
                              "ota.error_feedback=true"}, 5, 0, kFederatedColumns, {"final_model.pt"}});
}

TEST_CASE("a split-learning server SIGKILLed after a round and resumed ends with the uninterrupted run's decoder and encoder") {
  // One node: with several, the decoder takes their batches in arrival order, and two runs differ
  // anyway. Momentum 0.9 on both sides: the decoder's is in the checkpoint, the encoder's in the
  // node's carried state (<output_dir>/node-state), which the restarted node reads.
  ResumeMatchesUninterrupted({"split-resume", "split_inference.toml", {"data.train_limit=600", "data.test_limit=200",
                              "federation.nodes=1", "training.momentum=0.9", "split.inference.requests=0"}, 4, 1,
                              {"accuracy_by_width", "loss_by_width"}, {"final_decoder.pt", "final_encoder.pt"}});
}

TEST_CASE("a node SIGSTOPped past the liveness timeout is declared failed, and rejoins after SIGCONT") {
  const std::string out = TempDir("sigstop");
  fs::remove_all(out);
  // Enough rounds that the node, once continued, finishes the round it was stopped in, is told it
  // is unknown, joins again and takes part in later rounds, even on a loaded machine.
  const pid_t launcher = Start(RunCmd(out, {"federation.rounds=16", "server.liveness_timeout_s=2.0", "data.partition=\"iid\""}),
                               out + ".log");
  REQUIRE(WaitFor([&] { return fs::exists(out + "/metrics.jsonl") && Metrics(out).size() >= 2; }));
  const std::string ep = Slurp(out + "/endpoint");
  const std::string port = ep.substr(ep.rfind(':') + 1, ep.find('\n') - ep.rfind(':') - 1);
  const pid_t node = FindProcess({"node", "--connect", ":" + port, "--index 1"});
  REQUIRE(node > 0);
  REQUIRE(kill(node, SIGSTOP) == 0);
  std::this_thread::sleep_for(4s);  // past the 2 s liveness timeout, while rounds go on
  REQUIRE(kill(node, SIGCONT) == 0);
  REQUIRE_MESSAGE(Wait(launcher) == 0, Slurp(out + ".log"));
  const auto rows = Metrics(out);
  REQUIRE(rows.size() == 17);
  size_t failed_in = 0;  // the round node-1 was declared silent in
  for (const auto& r : rows)
    for (const auto& f : r["failed_nodes"])
      if (f["node"] == "node-1" && f["reason"].get<std::string>().find("silent") != std::string::npos)
        failed_in = r["round"].get<size_t>();
  REQUIRE(failed_in > 0);
  size_t back_in = 0;  // the first later round all four nodes took part in: node-1 is back
  for (size_t r = failed_in + 1; r < rows.size() && !back_in; ++r)
    if (rows[r]["participants"] == 4) back_in = r;
  CHECK_MESSAGE(back_in > failed_in, "node-1 failed in round ", failed_in, " and took part in no later round");
  CHECK(Slurp(out + "/logs/node-1.log").find(" again") != std::string::npos);  // "joined run ... again"
  fs::remove_all(out);
  fs::remove(out + ".log");
}

TEST_CASE("1,100 idle connections against a 1,024-descriptor server: refused beyond the per-peer limit, real nodes join") {
  const std::string out = TempDir("flood");
  fs::remove_all(out);
  fs::create_directories(out);
  const std::string epf = out + "/ep";
  const pid_t server = Start({"prlimit", "--nofile=1024:1024", EDGEBED_BINARY, "server", "--scenario",
                              std::string(EDGEBED_SOURCE_DIR) + "/scenarios/quick.toml", "--set", "output_dir=\"" + out + "\"",
                              "--set", "federation.rounds=2", "--set", "server.max_connections_per_peer=100",
                              "--endpoint-file", epf},
                             out + ".log");
  REQUIRE(WaitFor([&] { return fs::exists(epf); }));
  const std::string ep = Slurp(epf);
  const int port = std::stoi(ep.substr(ep.rfind(':') + 1));
  // From 127.0.0.2: another peer address than the real nodes' 127.0.0.1.
  std::vector<int> idle;
  for (int i = 0; i < 1100; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in src{}, dst{};
    src.sin_family = dst.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.2", &src.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    dst.sin_port = htons(static_cast<uint16_t>(port));
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof(src)) == 0);
    if (connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof(dst)) == 0) idle.push_back(fd);
    else close(fd);
  }
  CHECK(idle.size() >= 1000);
  std::vector<pid_t> nodes;
  for (int i = 0; i < 4; ++i)
    nodes.push_back(Start({EDGEBED_BINARY, "node", "--connect", ep.substr(0, ep.find('\n')), "--index", std::to_string(i)},
                          out + ".log"));
  CHECK_MESSAGE(Wait(server) == 0, Slurp(out + ".log"));
  for (pid_t n : nodes) Wait(n);
  for (int fd : idle) close(fd);
  const json s = Summary(out);
  CHECK(s["status"] == "complete");
  CHECK(s["dropped"]["refused_connections"].get<uint64_t>() >= 900);
  CHECK(Metrics(out).back()["participants"] == 4);
  CHECK(Slurp(out + ".log").find("server.max_connections_per_peer = 100") != std::string::npos);
  fs::remove_all(out);
  fs::remove(out + ".log");
}

TEST_CASE("shell metacharacters in the scenario's name and output_dir reach no shell") {
  const std::string base = TempDir("shell");
  fs::remove_all(base);
  fs::create_directories(base);
  const std::string out = base + "/o'$(touch " + base + "/pwned1)`touch " + base + "/pwned2`;touch " + base + "/pwned3";
  const std::string log = base + "/run.log";
  const int rc = RunArgs({EDGEBED_BINARY, "run", std::string(EDGEBED_SOURCE_DIR) + "/scenarios/quick.toml", "--set",
                          "federation.rounds=1", "--set",
                          "name=\"x'; system(\\\"touch " + base + "/pwned4\\\"); print '|touch " + base + "/pwned5\"",
                          "--set", "output_dir=\"" + out + "\""},
                         log);
  REQUIRE_MESSAGE(rc == 0, Slurp(log));
  CHECK(fs::file_size(out + "/metrics.png") > 1000);
  std::vector<std::string> stray;
  for (const auto& e : fs::directory_iterator(base))
    if (e.path().filename().string().find("pwned") != std::string::npos) stray.push_back(e.path());
  CHECK_MESSAGE(stray.empty(), "created: ", stray.size());
  fs::remove_all(base);
}

TEST_CASE("a full disk: a clear error naming the file, every row written before it kept whole") {
  const std::string out = TempDir("full");
  fs::remove_all(out);
  fs::create_directories(out);
  // 96 KiB: the run's scenario, logs, first rows and checkpoints fit; 30 rounds do not.
  REQUIRE_MESSAGE(mount("tmpfs", out.c_str(), "tmpfs", 0, "size=96k") == 0, "mount tmpfs (needs root): ", strerror(errno));
  const int rc = RunArgs(RunCmd(out, {"federation.rounds=30", "model.name=\"logreg\"", "data.partition=\"iid\""}), out + ".log");
  const std::string log = Slurp(out + ".log");
  CHECK(rc != 0);
  CHECK_MESSAGE(log.find("No space left on device") != std::string::npos, log);
  CHECK(log.find("cannot write " + out + "/") != std::string::npos);
  size_t rows = 0;
  {
    std::ifstream in(out + "/metrics.jsonl");
    for (std::string line; std::getline(in, line); ++rows) CHECK(!json::parse(line, nullptr, false).is_discarded());
  }
  CHECK(rows >= 2);
  CHECK(rows < 31);
  CHECK(umount(out.c_str()) == 0);
  fs::remove_all(out);
  fs::remove(out + ".log");
}

TEST_CASE("10,000 nodes with Dirichlet(0.5) fail at load with the numbers, before any process starts") {
  const std::string out = TempDir("dirichlet");
  fs::remove_all(out);
  const int rc = RunArgs(RunCmd(out, {"federation.nodes=10000", "population.simulated=10000", "population.hosts=2",
                                      "data.partition=\"dirichlet\"", "data.alpha=0.5", "data.train_limit=0"}),
                         out + ".log");
  const std::string log = Slurp(out + ".log");
  CHECK(rc == 2);
  CHECK_MESSAGE(log.find("60000 training samples over 10000 nodes is 6 per node") != std::string::npos, log);
  CHECK(!fs::exists(out + "/logs/host-0.log"));
  fs::remove_all(out);
  fs::remove(out + ".log");
}

TEST_CASE("a server SIGKILLed and restarted with --resume on its port: node processes and a node host reconnect and join again") {
  const std::string ref = TempDir("restart-ref"), out = TempDir("restart");
  fs::remove_all(ref);
  fs::remove_all(out);
  const std::vector<std::string> set = {"federation.rounds=6", "data.partition=\"iid\"", "federation.nodes=6",
                                        "population.simulated=2", "server.liveness_timeout_s=5.0"};
  REQUIRE_MESSAGE(RunArgs(RunCmd(ref, set), ref + ".log") == 0, Slurp(ref + ".log"));

  // The same federation by hand: a server, 4 node processes and one node host, so that the server
  // alone can be killed and started again while its nodes keep running.
  fs::create_directories(out);
  pid_t server = Start(ServerArgs("quick.toml", out, set), out + ".log");
  const std::string ep = AwaitEndpoint(out);
  std::vector<pid_t> nodes;
  for (int i = 0; i < 4; ++i)
    nodes.push_back(Start({EDGEBED_BINARY, "node", "--connect", ep, "--index", std::to_string(i)}, out + ".nodes.log"));
  std::vector<std::string> host = {EDGEBED_BINARY, "nodehost", "--scenario", std::string(EDGEBED_SOURCE_DIR) + "/scenarios/quick.toml",
                                   "--connect", ep, "--first", "4", "--count", "2"};
  for (const auto& s : set) host.insert(host.end(), {"--set", s});
  nodes.push_back(Start(host, out + ".nodes.log"));
  REQUIRE(WaitFor([&] { return fs::exists(out + "/metrics.jsonl") && Metrics(out).size() >= 3; }));  // rounds 0..2
  REQUIRE(kill(server, SIGKILL) == 0);
  Wait(server);
  std::this_thread::sleep_for(1s);  // the nodes see the link go down and keep retrying
  fs::remove(out + "/ep");
  server = Start(ServerArgs("quick.toml", out, set, {"--resume", out, "--bind", ep}), out + ".log");
  CHECK_MESSAGE(Wait(server) == 0, Slurp(out + ".log"));
  for (pid_t n : nodes) CHECK(Wait(n) == 0);  // each left on the resumed server's shutdown
  const auto a = Metrics(ref), b = Metrics(out);
  REQUIRE(b.size() == a.size());
  for (size_t r = 0; r < a.size(); ++r) CHECK(b[r]["test_accuracy"] == a[r]["test_accuracy"]);
  CHECK(Slurp(out + "/final_model.pt") == Slurp(ref + "/final_model.pt"));
  const std::string node_log = Slurp(out + ".nodes.log");
  CHECK(node_log.find("reconnected to " + ep + "; joining again") != std::string::npos);
  // The resumed server kept the run's id (its checkpoint's), so the nodes took it for the same run.
  const std::string run_id = Summary(out)["run_id"].get<std::string>();
  CHECK(run_id.rfind("quick-7-", 0) == 0);
  CHECK(node_log.find("joined run " + run_id + " again") != std::string::npos);
  CHECK(Summary(out)["status"] == "complete");
  for (const auto& d : {ref, out}) {
    fs::remove_all(d);
    fs::remove(d + ".log");
  }
  fs::remove(out + ".nodes.log");
}

TEST_CASE("split learning: a server SIGKILLed and restarted with --resume on its port; the encoders reconnect, join again and finish; SIGTERM makes one leave") {
  const std::string out = TempDir("split-restart");
  fs::remove_all(out);
  fs::create_directories(out);
  const std::vector<std::string> set = {"data.train_limit=600", "data.test_limit=200", "federation.nodes=3",
                                        "federation.rounds=5", "split.inference.requests=0", "server.liveness_timeout_s=5.0",
                                        "federation.min_quorum=0.3"};
  pid_t server = Start(ServerArgs("split_inference.toml", out, set), out + ".log");
  const std::string ep = AwaitEndpoint(out);
  std::vector<pid_t> nodes;
  for (int i = 0; i < 3; ++i)
    nodes.push_back(Start({EDGEBED_BINARY, "node", "--connect", ep, "--index", std::to_string(i)},
                          out + ".n" + std::to_string(i) + ".log"));
  REQUIRE(WaitFor([&] { return fs::exists(out + "/checkpoint.bin") && fs::exists(out + "/metrics.jsonl") && Metrics(out).size() >= 1; }));
  REQUIRE(kill(server, SIGKILL) == 0);
  const size_t rows_at_kill = Metrics(out).size();  // the checkpoint holds this round or the one before
  Wait(server);
  std::this_thread::sleep_for(1s);  // the nodes see the link go down and keep retrying
  fs::remove(out + "/ep");
  server = Start(ServerArgs("split_inference.toml", out, set, {"--resume", out, "--bind", ep}), out + ".log");
  // node-2 is stopped (systemctl stop) once the resumed server has aggregated a round.
  REQUIRE(WaitFor([&] { return Slurp(out + ".log").find("resuming split-learning run") != std::string::npos &&
                               Metrics(out).size() >= rows_at_kill + 1; }));
  REQUIRE(kill(nodes[2], SIGTERM) == 0);
  CHECK(Wait(nodes[2]) == 0);  // a stop, not a failure
  CHECK_MESSAGE(Wait(server) == 0, Slurp(out + ".log"));
  CHECK(Wait(nodes[0]) == 0);  // each left on the resumed server's shutdown
  CHECK(Wait(nodes[1]) == 0);
  const auto rows = Metrics(out);
  REQUIRE(rows.size() == 5);
  for (size_t r = 0; r < rows.size(); ++r) CHECK(rows[r]["round"] == r + 1);  // every round once
  CHECK(rows.back()["participants"] == 2);  // node-2 left
  CHECK(rows.back()["test_accuracy"].get<double>() > 0.5);
  const json s = Summary(out);
  CHECK(s["status"] == "complete");
  CHECK(s["resumed_from_round"].get<uint32_t>() >= 1);
  for (int i = 0; i < 2; ++i) {
    const std::string log = Slurp(out + ".n" + std::to_string(i) + ".log");
    CHECK(log.find("reconnected to " + ep + "; joining again") != std::string::npos);
    CHECK(log.find("joined run split-inference") != std::string::npos);
  }
  CHECK(Slurp(out + ".n2.log").find("stopped by a signal; left the federation") != std::string::npos);
  CHECK_MESSAGE(Slurp(out + ".log").find("node-2 left: stopped by a signal") != std::string::npos, Slurp(out + ".log"));
  fs::remove_all(out);
  for (const char* f : {".log", ".n0.log", ".n1.log", ".n2.log"}) fs::remove(out + f);
}

TEST_CASE("SIGTERM (systemctl stop) makes a node and a node host leave gracefully; the run goes on without them") {
  const std::string out = TempDir("sigterm");
  fs::remove_all(out);
  const std::string quick = std::string(EDGEBED_SOURCE_DIR) + "/scenarios/quick.toml";
  const std::vector<std::string> set = {"--set", "federation.nodes=4", "--set", "population.simulated=2", "--set",
                                        "federation.rounds=8", "--set", "data.partition=\"iid\"", "--set",
                                        "federation.min_quorum=0.2"};
  std::vector<std::string> server = {EDGEBED_BINARY, "server", "--scenario", quick, "--set", "output_dir=\"" + out + "\"",
                                     "--endpoint-file", out + ".ep"};
  server.insert(server.end(), set.begin(), set.end());
  fs::remove(out + ".ep");
  const pid_t srv = Start(server, out + ".log");
  REQUIRE(WaitFor([&] { return fs::exists(out + ".ep"); }));
  std::string ep = Slurp(out + ".ep");
  ep = ep.substr(0, ep.find('\n'));
  const pid_t n0 = Start({EDGEBED_BINARY, "node", "--connect", ep, "--index", "0"}, out + ".n0.log");
  const pid_t n1 = Start({EDGEBED_BINARY, "node", "--connect", ep, "--index", "1"}, out + ".n1.log");
  std::vector<std::string> host = {EDGEBED_BINARY, "nodehost", "--scenario", quick, "--connect", ep, "--first", "2", "--count", "2"};
  host.insert(host.end(), set.begin(), set.end());
  const pid_t h = Start(host, out + ".host.log");
  REQUIRE(WaitFor([&] { return fs::exists(out + "/metrics.jsonl") && Metrics(out).size() >= 3; }));  // rounds 0..2
  REQUIRE(kill(n1, SIGTERM) == 0);
  REQUIRE(kill(h, SIGTERM) == 0);
  CHECK(Wait(n1) == 0);  // a stop, not a failure
  CHECK(Wait(h) == 0);
  CHECK_MESSAGE(Wait(srv) == 0, Slurp(out + ".log"));
  CHECK(Wait(n0) == 0);
  const auto rows = Metrics(out);
  REQUIRE(rows.size() == 9);
  CHECK(rows.back()["participants"] == 1);  // node-0 alone after the others left
  const std::string log = Slurp(out + ".log");
  CHECK(log.find("node-1 left: stopped by a signal") != std::string::npos);
  CHECK(log.find("silent for more than") == std::string::npos);  // nobody was waited out
  CHECK(Slurp(out + ".n1.log").find("left the federation") != std::string::npos);
  CHECK(Slurp(out + ".host.log").find("2 hosted nodes left the federation") != std::string::npos);
  fs::remove_all(out);
  for (const char* f : {".log", ".ep", ".n0.log", ".n1.log", ".host.log"}) fs::remove(out + f);
}
