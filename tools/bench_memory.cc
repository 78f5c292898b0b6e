// `edgebed bench memory`: the peak resident and anonymous memory of every process of a default run,
// per uplink kind, beside the floor (a process that only initialises libtorch, ZeroMQ and protobuf).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>
#include <unistd.h>
#include <zmq.hpp>

#include "codecs/wire.h"
#include "scenarios/scenario.h"
#include "splitnets/learner.h"
#include "splitnets/split_training.h"  // Median
#include "tools/bench.h"
#include "tools/launcher.h"
#include "tools/process.h"
#include "tools/proc_memory.h"

namespace edgebed {
namespace {

constexpr double kNodeRssTargetMib = 160, kNodeAnonTargetMib = 64, kServerRssTargetMib = 250;

struct RoleFigures {
  std::vector<double> rss, anon, file;
};

double Max(const std::vector<double>& v) { return v.empty() ? 0.0 : *std::max_element(v.begin(), v.end()); }

std::map<std::string, RoleFigures> ByRole(const std::map<pid_t, ProcessMemory>& seen) {
  std::map<std::string, RoleFigures> roles;
  for (const auto& [pid, m] : seen) {
    auto& r = roles[m.role];
    r.rss.push_back(m.peak_rss_mib);
    r.anon.push_back(m.peak_anon_mib);
    r.file.push_back(m.peak_file_mib);
  }
  return roles;
}

nlohmann::json RoleJson(const RoleFigures& r) {
  return {{"processes", r.rss.size()},      {"peak_rss_mib_max", Max(r.rss)},   {"peak_rss_mib_median", Median(r.rss)},
          {"peak_anon_mib_max", Max(r.anon)}, {"peak_anon_mib_median", Median(r.anon)}, {"peak_file_mib_max", Max(r.file)}};
}

// The floor, measured as the runs are: a child process sampled from outside.
Result<RoleFigures> MeasureFloor(const std::string& exe, const std::string& dir) {
  DescendantSampler sampler;
  const pid_t pid = Spawn({exe, "bench", "floor"}, dir + "/floor.log");
  if (pid < 0) return Status::Failed("bench memory: could not start the floor process");
  const int rc = WaitExit(pid);
  auto roles = ByRole(sampler.Stop());
  if (rc != 0 || roles.count("bench floor") == 0)
    return Status::Failed("bench memory: the floor process failed (exit " + std::to_string(rc) + "); see " + dir + "/floor.log");
  return roles["bench floor"];
}

}  // namespace

int RunMemoryFloor() {
  // ZeroMQ: a context (its I/O thread) and a bound socket.
  zmq::context_t ctx(1);
  zmq::socket_t router(ctx, zmq::socket_type::router);
  router.bind("tcp://127.0.0.1:*");
  // protobuf: one message through the wire format.
  wire::Envelope env;
  env.set_sender("floor");
  env.mutable_fit_res()->set_round(1);
  std::string bytes;
  if (!env.SerializeToString(&bytes) || !env.ParseFromString(bytes)) return 1;
  // libtorch: the smallest model, one batch forward and backward.
  auto learner = Learner::Create("logreg", 1);
  if (!learner.ok()) return 1;
  Dataset d;
  d.rows = d.cols = 28;
  d.images.assign(8 * 28 * 28, 0);
  d.labels.assign(8, 0);
  if (Status st = learner.value()->Check(d); !st.ok()) {
    spdlog::error("bench floor: {}", st.message());
    return 1;
  }
  ProcessMemory self;
  (void)ReadProcessMemory(getpid(), &self);
  std::cout << nlohmann::json{{"peak_rss_mib", self.peak_rss_mib}, {"anon_mib", self.peak_anon_mib}}.dump() << std::endl;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the sampler see it as it is now
  // Leave without running the libraries' exit handlers: what they touch on the way out is not
  // initialisation (it added 1-8 MiB to the high-water mark).
  std::_Exit(0);
}

nlohmann::json BenchMemory(int rounds, const std::vector<std::string>& uplinks, const std::string& exe) {
  const std::string root = "runs/bench-memory";
  std::error_code ec;
  std::filesystem::create_directories(root, ec);
  if (ec) return {{"error", root + ": " + ec.message()}};
  auto floor = MeasureFloor(exe, root);
  if (!floor.ok()) return {{"error", floor.status().message()}};
  nlohmann::json out = {{"floor", RoleJson(*floor)}, {"rounds", rounds}};
  spdlog::info("memory    the floor (libtorch + ZeroMQ + protobuf initialised, one batch through logreg): "
               "peak RSS {:.1f} MiB, anonymous {:.1f} MiB", Max(floor->rss), Max(floor->anon));
  for (const std::string& uplink : uplinks) {
    const std::string dir = root + "/" + uplink + "-" + std::to_string(rounds) + "r";
    auto sc = ParseScenario(DefaultScenarioText(),
                            {"name=\"bench-memory\"", "output_dir=\"" + dir + "\"", "federation.rounds=" + std::to_string(rounds),
                             "channel.uplink=\"" + uplink + "\""},
                            "<bench memory>");
    if (!sc.ok()) return {{"error", sc.status().message()}};
    DescendantSampler sampler;
    const int rc = RunFederation(sc.value(), exe);
    auto roles = ByRole(sampler.Stop());
    if (rc != 0) return {{"error", "the federation with uplink " + uplink + " failed; see " + dir}};
    nlohmann::json row;
    for (const auto& [role, figures] : roles) row[role] = RoleJson(figures);
    // The server's own peak after each round (metrics.jsonl): is it flat?
    std::vector<double> per_round;
    std::ifstream in(dir + "/metrics.jsonl");
    for (std::string line; std::getline(in, line);) {
      auto m = nlohmann::json::parse(line, nullptr, false);
      if (m.is_object() && m.value("round", 0) > 0 && m.contains("server_peak_rss_mb"))
        per_round.push_back(m["server_peak_rss_mb"].get<double>());  // VmHWM / 1024: MiB
    }
    if (!per_round.empty())
      row["server_peak_rss_mib_by_round"] = {{"first", per_round.front()}, {"middle", per_round[per_round.size() / 2]},
                                             {"last", per_round.back()}};
    const RoleFigures& node = roles["node"];
    const RoleFigures& server = roles["server"];
    spdlog::info("memory    uplink {:<11} {} rounds: node peak RSS {:.1f} MiB max ({:.1f} median; target <= {:.0f}), "
                 "anonymous {:.1f} MiB max (target <= {:.0f}); server peak RSS {:.1f} MiB (target <= {:.0f}), "
                 "anonymous {:.1f} MiB",
                 uplink, rounds, Max(node.rss), Median(node.rss), kNodeRssTargetMib, Max(node.anon), kNodeAnonTargetMib,
                 Max(server.rss), kServerRssTargetMib, Max(server.anon));
    if (!per_round.empty())
      spdlog::info("          server peak RSS after round 1 / {} / {}: {:.1f} / {:.1f} / {:.1f} MiB", per_round.size() / 2 + 1,
                   per_round.size(), per_round.front(), per_round[per_round.size() / 2], per_round.back());
    out[uplink] = row;
  }
  return out;
}

}  // namespace edgebed
