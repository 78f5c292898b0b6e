// GNN training as processes: `edgebed run` starts the server and one node process per shard; the
// shards exchange embeddings and gradients over ZeroMQ on loopback.
#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "tests/e2e/e2e_run.h"

using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string TempDir(const std::string& tag) { return edgebed::e2e::TempDir("gnn-e2e", tag); }

// A small version of scenarios/gnn_pipe.toml: 800 vertices, 4 layers of width 16, 3 epochs.
int RunGnn(const std::string& out, const std::string& extra) {
  return edgebed::e2e::RunScenario(std::string(EDGEBED_SOURCE_DIR) + "/scenarios/gnn_pipe.toml", out,
                                   "--set gnn.graph.vertices=800 --set gnn.layers=4 --set gnn.hidden=16 --set gnn.epochs=3 " + extra);
}
using edgebed::e2e::Cleanup;
using edgebed::e2e::Start;
using edgebed::e2e::Wait;
using edgebed::e2e::Slurp;
using edgebed::e2e::Summary;

// metrics.csv's accuracy and loss columns (test_accuracy, test_loss, train_loss), as written.
std::vector<std::string> LossColumns(const std::string& out) {
  std::vector<std::string> rows;
  std::istringstream in(Slurp(out + "/metrics.csv"));
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::istringstream cells(line);
    std::string c, kept;
    for (int i = 0; i < 4 && std::getline(cells, c, ','); ++i) kept += c + ",";
    rows.push_back(kept);
  }
  return rows;
}

}  // namespace

TEST_CASE("GNNPipe over processes with one chunk trains exactly the full-graph reference") {
  const std::string full = TempDir("full"), pipe = TempDir("pipe1");
  REQUIRE_MESSAGE(RunGnn(full, "--set gnn.mode='\"full\"'") == 0, Slurp(full + ".log"));
  REQUIRE_MESSAGE(RunGnn(pipe, "--set gnn.chunks=1") == 0, Slurp(pipe + ".log"));
  const auto a = LossColumns(full), b = LossColumns(pipe);
  REQUIRE(a.size() == 3);
  CHECK(a == b);  // the same digits: accuracy, test loss and training loss every epoch
  const json s = Summary(pipe);
  CHECK(s["traffic"]["embedding"]["values_per_epoch"] == 800.0 * 16);  // (P-1) N d
  CHECK(s["traffic"]["gradient"]["values_per_epoch"] == 800.0 * 16);
  CHECK(s["stale_share"] == 0.0);
  Cleanup(full);
  Cleanup(pipe);
}

TEST_CASE("GNNPipe with chunks and graph parallelism: traffic equals the analytic counts, staleness is reported") {
  const std::string pipe = TempDir("pipe4"), graph = TempDir("graph");
  REQUIRE_MESSAGE(RunGnn(pipe, "--set gnn.chunks=4") == 0, Slurp(pipe + ".log"));
  REQUIRE_MESSAGE(RunGnn(graph, "--set gnn.mode='\"graph\"'") == 0, Slurp(graph + ".log"));
  const json p = Summary(pipe), g = Summary(graph);
  for (const json* s : {&p, &g})
    for (const char* kind : {"embedding", "gradient", "parameter", "eval"}) {
      const auto& t = (*s)["traffic"][kind];
      CHECK_MESSAGE(t["values_per_epoch"] == t["analytic_values_per_epoch"], (*s)["mode"], " ", kind);
      CHECK(t["bytes_per_epoch"].get<double>() >= 4.0 * t["values_per_epoch"].get<double>());
    }
  CHECK(p["stale_share"].get<double>() > 0.0);
  CHECK(p["stale_rel_error"].get<double>() > 0.0);
  CHECK(p["max_staleness_epochs"] == 1);
  CHECK(g["stale_share"] == 0.0);
  CHECK(g["traffic"]["parameter"]["values_per_epoch"].get<double>() > 0.0);  // the gradient all-reduce
  CHECK(p["traffic"]["parameter"]["values_per_epoch"] == 0.0);               // stages own their layers
  CHECK(g["analytic"]["halo_vertices"].get<double>() > 0.0);
  CHECK(p["epochs_completed"] == 3);
  CHECK(g["epochs_completed"] == 3);
  edgebed::e2e::CheckReport(pipe, {"accuracy", "loss", "gnn_traffic", "gnn_staleness", "gnn_time"});
  CHECK(Slurp(pipe + "/report.html").find("embeddings, analytic") != std::string::npos);
  Cleanup(pipe);
  Cleanup(graph);
}

TEST_CASE("on a 1 Mbit/s virtual link an epoch takes what the bytes on the uplinks and the compute allow") {
  // The slowest shard's virtual epoch is at least its uplink's bytes (>= the mean share) at 1 Mbit/s,
  // and at most every shard's compute (<= its wall time) plus every byte on the air one after another.
  const std::string graph = TempDir("graph-link");
  REQUIRE_MESSAGE(RunGnn(graph, "--set gnn.mode='\"graph\"' --set gnn.link_mbps=1.0") == 0, Slurp(graph + ".log"));
  std::ifstream rows(graph + "/metrics.jsonl");
  int n = 0;
  for (std::string line; std::getline(rows, line); ++n) {
    const json r = json::parse(line);
    const double bytes = r["embedding_bytes"].get<double>() + r["gradient_bytes"].get<double>() +
                         r["parameter_bytes"].get<double>();
    const double on_air_s = bytes * 8.0 / 1e6, v = r["virtual_epoch_s"].get<double>();
    INFO("epoch ", r["epoch"], ": ", bytes, " bytes sent, virtual ", v, " s, train ", r["train_s"], " s per shard at most");
    CHECK(v >= on_air_s / 2.0);
    CHECK(v <= on_air_s + 2.0 * r["train_s"].get<double>());
    CHECK(v > 0.2);  // ~150 KB: the bytes dominate the compute (a few ms) by far
  }
  CHECK(n == 3);
  const json s = Summary(graph);
  CHECK(s["link_mbps"] == 1.0);
  CHECK(s["median_virtual_epoch_s"].get<double>() > 0.2);
  Cleanup(graph);
}

TEST_CASE("hybrid over 4 processes (2 stages x 2 partitions): accuracy of the reference, traffic as counted") {
  const std::string full = TempDir("hfull"), hybrid = TempDir("hybrid");
  REQUIRE_MESSAGE(RunGnn(full, "--set gnn.mode='\"full\"'") == 0, Slurp(full + ".log"));
  REQUIRE_MESSAGE(RunGnn(hybrid, "--set gnn.mode='\"hybrid\"' --set gnn.partitions=2") == 0, Slurp(hybrid + ".log"));
  const json f = Summary(full), h = Summary(hybrid);
  CHECK(h["shards"] == 4);
  for (const char* kind : {"embedding", "gradient", "parameter", "eval"})
    CHECK_MESSAGE(h["traffic"][kind]["values_per_epoch"] == h["traffic"][kind]["analytic_values_per_epoch"], kind);
  CHECK(h["traffic"]["embedding"]["values_per_epoch"].get<double>() > 800.0 * 16);  // the stage boundary and the halos
  CHECK(h["test_accuracy"].get<double>() == doctest::Approx(f["test_accuracy"].get<double>()).epsilon(0.01));
  Cleanup(full);
  Cleanup(hybrid);
}

TEST_CASE("a pipeline stage that dies mid-epoch is named, and the run stops cleanly") {
  const std::string out = TempDir("crash");
  const int rc = RunGnn(out, "--set gnn.epochs=5 --set 'faults.crash=[{node = 1, round = 3}]' "
                             "--set server.liveness_timeout_s=3.0 --set gnn.peer_timeout_s=30.0");
  const std::string log = Slurp(out + ".log");
  CHECK_MESSAGE(rc != 0, log);  // the run did not complete, and says so
  const json s = Summary(out);
  CHECK(s["epochs_completed"] == 2);
  const std::string why = s["stopped"].get<std::string>();
  CHECK_MESSAGE(why.find("epoch 3") != std::string::npos, why);
  CHECK_MESSAGE(why.find("node-1 (stage 1)") != std::string::npos, why);
  CHECK(log.find("GNN training stops") != std::string::npos);
  CHECK(log.find("still running after the server finished") == std::string::npos);  // stage 0 left on the shutdown
  CHECK(Slurp(out + "/logs/node-0.log").find("shutdown") != std::string::npos);
  std::istringstream csv(Slurp(out + "/metrics.csv"));
  int lines = 0;
  for (std::string l; std::getline(csv, l);) ++lines;
  CHECK(lines == 3);  // header + the 2 completed epochs
  Cleanup(out);
}

TEST_CASE("GNN shards over CURVE: the server hands each shard its peers' keys, and the run equals the plain one") {
  const std::string plain = TempDir("plain"), secure = TempDir("curve"), keys = secure + "-keys";
  REQUIRE_MESSAGE(RunGnn(plain, "--set gnn.chunks=2") == 0, Slurp(plain + ".log"));
  fs::remove_all(keys);
  REQUIRE(Wait(Start({EDGEBED_BINARY, "keys", "--out", keys, "server", "node-0", "node-1"}, secure + ".keys.log")) == 0);
  const std::string ep_file = secure + ".ep";
  fs::remove(ep_file);
  const pid_t server = Start({EDGEBED_BINARY, "server", "--scenario", std::string(EDGEBED_SOURCE_DIR) + "/scenarios/gnn_pipe.toml",
                              "--set", "output_dir=\"" + secure + "\"", "--set", "gnn.graph.vertices=800", "--set", "gnn.layers=4",
                              "--set", "gnn.hidden=16", "--set", "gnn.epochs=3", "--set", "gnn.chunks=2", "--endpoint-file", ep_file,
                              "--key", keys + "/server.key", "--allow", keys + "/nodes.allow"},
                             secure + ".log");
  for (int i = 0; i < 600 && !fs::exists(ep_file); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::string ep = Slurp(ep_file);
  ep = ep.substr(0, ep.find('\n'));
  std::vector<pid_t> nodes;
  for (int i = 0; i < 2; ++i)
    nodes.push_back(Start({EDGEBED_BINARY, "node", "--connect", ep, "--index", std::to_string(i), "--key",
                           keys + "/node-" + std::to_string(i) + ".key", "--server-key", keys + "/server.pub"},
                          secure + ".nodes.log"));
  CHECK_MESSAGE(Wait(server) == 0, Slurp(secure + ".log"));
  for (pid_t n : nodes) CHECK(Wait(n) == 0);
  CHECK(LossColumns(secure) == LossColumns(plain));  // encryption changes no digit of the training
  CHECK(Slurp(secure + ".log").find("CURVE: links are encrypted") != std::string::npos);
  Cleanup(plain);
  Cleanup(secure);
  fs::remove_all(keys);
  for (const char* f : {".keys.log", ".ep", ".nodes.log"}) fs::remove(secure + f);
}

TEST_CASE("SIGTERM (systemctl stop) makes a GNN shard leave mid-run; the server names it and stops the run at once") {
  const std::string out = TempDir("sigterm");
  const std::string ep_file = out + ".ep";
  fs::remove(ep_file);
  fs::remove_all(out);
  const pid_t server = Start({EDGEBED_BINARY, "server", "--scenario", std::string(EDGEBED_SOURCE_DIR) + "/scenarios/gnn_pipe.toml",
                              "--set", "output_dir=\"" + out + "\"", "--set", "gnn.graph.vertices=800", "--set", "gnn.layers=4",
                              "--set", "gnn.hidden=16", "--set", "gnn.epochs=100000", "--set", "server.liveness_timeout_s=600.0",
                              "--set", "gnn.peer_timeout_s=600.0", "--endpoint-file", ep_file},
                             out + ".log");
  for (int i = 0; i < 600 && !fs::exists(ep_file); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::string ep = Slurp(ep_file);
  ep = ep.substr(0, ep.find('\n'));
  std::vector<pid_t> nodes;
  for (int i = 0; i < 2; ++i)
    nodes.push_back(Start({EDGEBED_BINARY, "node", "--connect", ep, "--index", std::to_string(i)},
                          out + ".n" + std::to_string(i) + ".log"));
  auto epochs = [&] {
    std::istringstream csv(Slurp(out + "/metrics.csv"));
    int lines = 0;
    for (std::string l; std::getline(csv, l);) ++lines;
    return lines - 1;
  };
  for (int i = 0; i < 3000 && epochs() < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  REQUIRE(epochs() >= 3);
  REQUIRE(kill(nodes[1], SIGTERM) == 0);
  CHECK(Wait(nodes[1]) == 0);  // a stop, not a failure
  // Long timeouts: only the leave can end the run this soon.
  CHECK(Wait(server) != 0);  // the run did not complete, and says so
  CHECK(Wait(nodes[0]) == 0);  // stage 0 left on the shutdown
  const json s = Summary(out);
  CHECK(s["status"] == "failed");
  const std::string why = s["stop_reason"].get<std::string>();
  CHECK_MESSAGE(why.find("node-1") != std::string::npos, why);
  CHECK_MESSAGE(why.find("stopped by a signal") != std::string::npos, why);
  CHECK(Slurp(out + ".n1.log").find("stopped by a signal") != std::string::npos);
  Cleanup(out);
  for (const char* f : {".ep", ".n0.log", ".n1.log"}) fs::remove(out + f);
}

TEST_CASE("a GNNPipe server SIGKILLed after a checkpoint and resumed trains exactly the uninterrupted run (shard states, tables)") {
  // Two chunks: the historical tables matter. The shards send their state every 2 epochs.
  const std::string ref = TempDir("resume-ref"), out = TempDir("resume");
  const std::string extra = "--set gnn.chunks=2 --set gnn.epochs=8 --set gnn.checkpoint_every=2";
  REQUIRE_MESSAGE(RunGnn(ref, extra) == 0, Slurp(ref + ".log"));
  fs::remove_all(out);
  std::vector<std::string> cmd = {EDGEBED_BINARY, "run", std::string(EDGEBED_SOURCE_DIR) + "/scenarios/gnn_pipe.toml",
                                  "--set", "output_dir=\"" + out + "\""};
  for (const char* s : {"gnn.graph.vertices=800", "gnn.layers=4", "gnn.hidden=16", "gnn.epochs=8", "gnn.chunks=2",
                        "gnn.checkpoint_every=2"})
    cmd.insert(cmd.end(), {"--set", s});
  const pid_t launcher = Start(cmd, out + ".log");
  // Killed once a checkpoint exists (epoch 2, 4 or 6) and a later epoch has started.
  for (int i = 0; i < 3000 && !(fs::exists(out + "/checkpoint.bin") && LossColumns(out).size() >= 3); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  REQUIRE(fs::exists(out + "/checkpoint.bin"));
  REQUIRE(kill(std::stoi(Slurp(out + "/server.pid")), SIGKILL) == 0);
  CHECK(Wait(launcher) != 0);
  const size_t rows_at_kill = LossColumns(out).size();
  INFO("killed with ", rows_at_kill, " epochs written");
  REQUIRE(rows_at_kill < 8);  // a resume with something left to do
  REQUIRE_MESSAGE(Wait(Start({EDGEBED_BINARY, "run", "--resume", out}, out + ".log")) == 0, Slurp(out + ".log"));
  CHECK(LossColumns(out) == LossColumns(ref));  // every epoch once, each digit as uninterrupted
  const json s = Summary(out);
  CHECK(s["status"] == "complete");
  CHECK(s["resumed_from_epoch"].get<uint32_t>() % 2 == 0);
  CHECK(s["resumed_from_epoch"].get<uint32_t>() >= 2);
  CHECK(Slurp(out + "/logs/node-1.log").find("shard state restored from the server's checkpoint") != std::string::npos);
  Cleanup(ref);
  Cleanup(out);
}
