#include "tools/launcher.h"

#include "tools/live_status.h"
#include "tools/process.h"
#include "tools/run_summary.h"

#include "codecs/count_decoder.h"
#include "record/files.h"
#include "record/plot.h"
#include "record/report.h"
#include "splitnets/learner.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <numeric>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>
#include <algorithm>

extern char** environ;

namespace edgebed {
namespace fs = std::filesystem;

namespace {

// A round-axis tic step that gives about ten tics.
int XTicStep(const std::string& dir) {
  std::ifstream in(dir + "/metrics.csv");
  int lines = 0;
  for (std::string l; std::getline(in, l);) ++lines;
  return std::max(1, (lines - 2) / 10);
}

// The first column of metrics.csv names the x axis: round (federations) or epoch (GNN runs).
std::string XLabel(const std::string& dir) {
  std::ifstream in(dir + "/metrics.csv");
  std::string head;
  std::getline(in, head);
  return head.rfind("epoch", 0) == 0 ? "epoch" : "round";
}

}  // namespace

bool PlotMetrics(const std::string& dir, const std::string& title) {
  const std::string csv = GnuplotPath(dir + "/metrics.csv");
  const std::string script =
      "set terminal pngcairo noenhanced size 1000,420 font 'sans,10'\n"
      "set output " + GnuplotPath(dir + "/metrics.png") + "\n"
      "set datafile separator ','\n"
      "set key autotitle columnhead bottom right\n"
      "set multiplot layout 1,2 title " + GnuplotString(title) + "\n"
      "set xtics " + std::to_string(XTicStep(dir)) + "\n"
      "set xlabel '" + XLabel(dir) + "'; set ylabel 'test accuracy'; set grid\n"
      "plot " + csv + " using 1:2 with linespoints pt 7 ps 0.6 title 'test accuracy'\n"
      "set ylabel 'test loss'\n"
      "plot " + csv + " using 1:3 with linespoints pt 7 ps 0.6 lc 2 title 'test loss'\n"
      "unset multiplot\n";
  std::error_code ec;
  fs::create_directories(dir + "/logs", ec);
  Status st = RunGnuplot(script, dir + "/logs/gnuplot.log");
  if (!st.ok()) {
    spdlog::warn("no plot {}/metrics.png: {}", dir, st.message());
    return false;
  }
  return true;
}

// The data files read, the partition computed, the model built and one batch of the real training
// data run forward and backward through it: a wrong file, partition, shape or module is an error
// naming them, before any process.
Status CheckModelOnData(const Scenario& sc) {
  EDGEBED_ASSIGN_OR_RETURN(DataPlan plan, PlanData(ScenarioDataSpec(sc)));
  std::vector<uint32_t> first(std::min<size_t>(8, plan.train_rows.size()));
  std::iota(first.begin(), first.end(), 0u);
  EDGEBED_ASSIGN_OR_RETURN(Dataset batch, LoadTrainRows(plan, first));
  if (!sc.is_split()) {  // the slimmable network is checked by its own config
    auto learner = Learner::Create(ScenarioModel(sc, &plan), sc.seed);
    if (!learner.ok() && !sc.transfer.backbone.empty())
      return Status::InvalidArgument(learner.status().message() + " (edgebed transfer pretrain --out " + sc.transfer.backbone +
                                     " makes a backbone)");
    if (!learner.ok()) return learner.status();
    EDGEBED_RETURN_IF_ERROR(learner.value()->Check(batch));
  }
  // A partition that cannot work (too few samples per node) fails here, with the numbers.
  return ScenarioPartitionSizes(sc, plan).status();
}

int RunFederation(const Scenario& sc, const std::string& exe, bool resume) {
  if (sc.channel.uplink == "digital_ota" && sc.ota.decoder == "amp_da_net") {  // refuse a bad decoder before any process
    auto dec = LoadAmpDaNet(sc.ota.decoder_path.empty() ? DefaultDecoderPath() : sc.ota.decoder_path);
    if (!dec.ok()) {
      spdlog::error("ota.decoder_path: {} (tools/train_decoder makes one)", dec.status().message());
      return 2;
    }
  }
  if (!sc.is_gnn()) {  // data, model and partition that cannot work fail here, before any process
    if (Status st = CheckModelOnData(sc); !st.ok()) {
      spdlog::error("{}", st.message());
      return 2;
    }
  }
  const std::string out = sc.output_dir;
  std::error_code ec;
  fs::create_directories(out + "/logs", ec);
  if (ec) {
    spdlog::error("output_dir = '{}': {}", out, ec.message());
    return 2;
  }
  const std::string resolved = out + "/scenario.toml";
  if (!resume) {
    fs::remove_all(out + "/node-state", ec);  // the nodes' carried state of an earlier run in this folder
    for (const char* f : {"summary.json", "report.html"}) fs::remove(out + "/" + f, ec);  // an earlier run's
    if (Status st = WriteFileAtomic(resolved, sc.ToToml()); !st.ok()) {
      spdlog::error("output_dir = '{}': {}", out, st.message());
      return 2;
    }
  }
  const std::string endpoint_file = out + "/endpoint";
  fs::remove(endpoint_file, ec);

  {
    const uint32_t real = sc.nodes - std::min(sc.nodes, sc.simulated);
    const uint32_t hosts = sc.simulated > 0 ? std::min(sc.hosts, sc.simulated) : 0;
    const std::string who = sc.simulated == 0 ? fmt::format("{} node processes", real)
                            : real == 0       ? fmt::format("{} simulated nodes on {} node host processes", sc.simulated, hosts)
                                              : fmt::format("{} node processes and {} simulated nodes on {} node host processes",
                                                            real, sc.simulated, hosts);
    const std::string unit = sc.strategy == "fedbuff" ? "server steps" : std::string(sc.round_unit()) + "s";
    spdlog::info("edgebed run '{}': server + {}, {} {}; outputs in {}", sc.name, who, sc.rounds, unit, out);
  }
  std::vector<std::string> server_args = {exe, "server", "--scenario", resolved, "--endpoint-file", endpoint_file};
  if (resume) server_args.insert(server_args.end(), {"--resume", out});
  // On a terminal the server's output passes through the launcher, under a live progress line.
  const bool live = ::isatty(STDOUT_FILENO) == 1;
  int server_out = -1;
  const pid_t server = live ? SpawnToPipe(server_args, &server_out) : Spawn(server_args, "");
  if (server < 0) return 1;
  std::unique_ptr<LiveStatus> status;  // shown once every process is started
  if (live)
    status = std::make_unique<LiveStatus>(server_out, out + "/metrics.jsonl", sc.is_gnn() ? sc.gnn.epochs : sc.rounds,
                                          sc.strategy == "fedbuff" ? "steps" : std::string(sc.round_unit()) + "s");
  (void)WriteFileAtomic(out + "/server.pid", std::to_string(server) + "\n");  // for `kill`; the run does not need it

  std::string endpoint;
  for (int i = 0; i < 600 && endpoint.empty(); ++i) {
    std::ifstream in(endpoint_file);
    std::getline(in, endpoint);
    if (endpoint.empty()) {
      if (TryReap(server) >= 0) {
        if (status) status->Finish();  // its messages
        spdlog::error("the server exited before binding (see above)");
        return 1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  if (endpoint.empty()) {
    spdlog::error("the server did not write {} within 60 s", endpoint_file);
    kill(server, SIGTERM);
    return 1;
  }

  // Nodes 0..relay_nodes-1 go through a standalone channel process.
  pid_t relay = -1;
  std::string relay_endpoint;
  if (sc.channel.relay_nodes > 0) {
    const std::string relay_file = out + "/channel-endpoint";
    fs::remove(relay_file, ec);
    relay = Spawn({exe, "channel", "--scenario", resolved, "--server", endpoint, "--endpoint-file", relay_file},
                  out + "/logs/channel.log");
    for (int i = 0; i < 600 && relay_endpoint.empty() && relay > 0; ++i) {
      std::ifstream in(relay_file);
      std::getline(in, relay_endpoint);
      if (relay_endpoint.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (relay_endpoint.empty()) {
      spdlog::error("the channel process did not start (see {}/logs/channel.log)", out);
      kill(server, SIGTERM);
      return 1;
    }
    spdlog::info("nodes 0..{} send through the channel process on {}", sc.channel.relay_nodes - 1, relay_endpoint);
  }

  std::vector<pid_t> nodes;
  const uint32_t real = sc.nodes - sc.simulated;
  for (uint32_t i = 0; i < real; ++i) {
    const std::string& target = i < sc.channel.relay_nodes ? relay_endpoint : endpoint;
    std::vector<std::string> args = {exe, "node", "--connect", target, "--index", std::to_string(i), "--state-dir",
                                     out + "/node-state"};
    if (!sc.data.dir.empty()) args.insert(args.end(), {"--data-dir", sc.data.dir});
    nodes.push_back(Spawn(args, out + "/logs/node-" + std::to_string(i) + ".log"));
  }
  // Simulated nodes: the highest indices, shared out among the node hosts.
  const uint32_t hosts = std::min(sc.hosts, std::max<uint32_t>(sc.simulated, 1));
  for (uint32_t h = 0; h < hosts && sc.simulated > 0; ++h) {
    const uint32_t first = real + sc.simulated * h / hosts, last = real + sc.simulated * (h + 1) / hosts;
    if (last <= first) continue;
    std::vector<std::string> args = {exe, "nodehost", "--scenario", resolved, "--connect", endpoint,
                                     "--first", std::to_string(first), "--count", std::to_string(last - first),
                                     "--state-dir", out + "/node-state"};
    nodes.push_back(Spawn(args, out + "/logs/host-" + std::to_string(h) + ".log"));
  }
  if (sc.simulated > 0)
    spdlog::info("{} real node processes, {} simulated nodes on {} node hosts", real, sc.simulated, hosts);

  int server_rc = -1;
  if (status) {
    while ((server_rc = TryReap(server)) < 0) status->Pump(200);
    status->Finish();
  } else {
    while ((server_rc = TryReap(server)) < 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  // Nodes leave on the server's shutdown; give stragglers a moment, then stop them.
  if (relay > 0) nodes.push_back(relay);  // it exits once its nodes have left
  const auto t0 = std::chrono::steady_clock::now();
  size_t running = nodes.size();
  std::vector<bool> reaped(nodes.size(), false);
  while (running > 0 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5)) {
    running = 0;
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (nodes[i] > 0 && !reaped[i]) {
        if (TryReap(nodes[i]) >= 0) reaped[i] = true; else ++running;
      }
    }
    if (running) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (nodes[i] > 0 && !reaped[i]) {
      spdlog::warn("{} still running after the server finished; stopping it",
                   nodes[i] == relay ? std::string("the channel process") : "node process " + std::to_string(i));
      kill(nodes[i], SIGKILL);
      waitpid(nodes[i], nullptr, 0);
    }
  }
  fs::remove(out + "/server.pid", ec);
  PlotMetrics(out, sc.name);  // an unfinished run gets its plot too
  if (!fs::exists(out + "/summary.json")) {  // the server ended without its summary (and its last report)
    if (Status st = WriteReport(out, ReportState::kInterrupted); !st.ok()) spdlog::warn("{}", st.message());
  }
  if (const std::string table = RunSummaryTable(out, sc.round_unit());
      !table.empty())
    std::cout << table << std::endl;
  if (server_rc != 0) {
    spdlog::error("the server exited with code {}{}", server_rc,
                  fs::exists(out + "/checkpoint.bin") ? "; `edgebed run --resume " + out + "` continues from the last complete round" : "");
    return server_rc;
  }
  if (sc.is_gnn()) {
    spdlog::info("results: {0}/metrics.csv (accuracy, bytes by kind, staleness per epoch), {0}/report.html, "
                 "{0}/summary.json (traffic beside the analytic counts, epochs to converge)", out);
  } else if (sc.is_split()) {
    spdlog::info("results: {0}/report.html, {0}/metrics.jsonl (accuracy_by_width), {0}/summary.json, "
                 "{0}/final_encoder.pt, {0}/final_decoder.pt{1}", out,
                 sc.split.inference.requests > 0 ? fmt::format(", {0}/inference.csv, {0}/inference.png", out) : "");
  } else {
    spdlog::info("results: {0}/report.html (open it in a browser), {0}/metrics.jsonl, {0}/summary.json, {0}/final_model.pt", out);
  }
  return 0;
}

}  // namespace edgebed
