#include "tools/deploy_cmd.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "codecs/curve.h"
#include "record/files.h"
#include "splitnets/partition_file.h"
#include "tools/inventory.h"
#include "tools/process.h"

namespace edgebed {
namespace fs = std::filesystem;
using json = nlohmann::json;
namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kRemoteRun = "/var/lib/edgebed/run";
constexpr const char* kRemoteData = "/var/lib/edgebed/data";
constexpr const char* kRemoteKeys = "/etc/edgebed/keys";
constexpr const char* kRemotePartition = "/var/lib/edgebed/partition.npz";

double Since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// NAME's key pair in `dir`, made once and kept (a deployment run again reuses it). Returns the public key.
Result<std::string> EnsureKeyPair(const std::string& dir, const std::string& name) {
  const std::string key = dir + "/" + name + ".key";
  if (fs::exists(key)) {
    EDGEBED_ASSIGN_OR_RETURN(CurveKeyPair pair, ReadCurveKeyFile(key, /*need_secret=*/true));
    return pair.public_key;
  }
  EDGEBED_ASSIGN_OR_RETURN(CurveKeyPair pair, MakeCurveKeyPair());
  EDGEBED_RETURN_IF_ERROR(WriteCurveKeyPair(dir, name, pair));
  spdlog::info("deploy: made the key pair {}/{}.key (0600) and .pub", dir, name);
  return pair.public_key;
}

// The server's scenario: the run folder and the data (and model) files at the server's paths.
// `files` gets {controller path, server path} of every file to copy.
Result<std::string> ServerScenario(const Scenario& in, std::vector<std::pair<std::string, std::string>>* files) {
  Scenario sc = in;
  sc.output_dir = kRemoteRun;
  auto move = [&](std::string* field, const std::string& prefix) {
    if (field->empty()) return;
    const std::string to = std::string(kRemoteData) + "/" + prefix + "-" + fs::path(*field).filename().string();
    files->push_back({*field, to});
    *field = to;
  };
  if (sc.data.format == "fashion-mnist" || sc.data.format == "cifar10") {
    const std::string dir = sc.data.dir.empty() ? DefaultFashionMnistDir() : sc.data.dir;
    if (sc.data.format == "cifar10" && sc.data.dir.empty()) return Status::InvalidArgument("data.dir: cifar10 needs its folder");
    std::vector<std::string> names;
    if (sc.data.format == "fashion-mnist")
      names = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
    else
      names = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
    for (const auto& n : names) files->push_back({dir + "/" + n, std::string(kRemoteData) + "/" + n});
    sc.data.dir = kRemoteData;
  } else {
    move(&sc.data.train, "train");
    move(&sc.data.train_labels, "train_labels");
    move(&sc.data.test, "test");
    move(&sc.data.test_labels, "test_labels");
  }
  move(&sc.torchscript.path, "model");
  move(&sc.transfer.backbone, "backbone");
  for (const auto& [from, to] : *files)
    if (!fs::exists(from)) return Status::NotFound("the server's data: " + from + " does not exist");
  return sc.ToToml();
}

std::string FindOnPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    const size_t end = dirs.find(':', start);
    const std::string d = dirs.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!d.empty() && access((d + "/" + program).c_str(), X_OK) == 0) return d + "/" + program;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return "";
}

std::string PlaybookDir(const DeployOptions& opt) {
  if (!opt.playbook_dir.empty()) return opt.playbook_dir;
  const std::string built = std::string(EDGEBED_SOURCE_DIR) + "/tools/deploy/ansible";
  return fs::exists(built + "/deploy.yml") ? built : "/usr/share/edgebed/ansible";
}

// Everything the playbook needs, per host, computed here so that the playbook only copies and starts.
Status Prepare(const Inventory& inv, json* vars) {
  const std::string work = fs::absolute(inv.work_dir).lexically_normal().string();
  std::error_code ec;
  for (const char* sub : {"keys", "partitions", "etc", "run"})
    if (fs::create_directories(work + "/" + sub, ec); ec)
      return Status::Unavailable("edgebed_work: cannot make " + work + "/" + sub + " (" + ec.message() + ")");
  if (fs::permissions(work + "/keys", fs::perms::owner_all, fs::perm_options::replace, ec); ec)
    return Status::Unavailable("edgebed_work: cannot make " + work + "/keys private (" + ec.message() + ")");
  EDGEBED_RETURN_IF_ERROR(EnsureKeyPair(work + "/keys", "server").status());
  std::string allow = "# edgebed allow-list (made by edgebed deploy): <public key> <node name>\n";
  for (size_t i = 1; i < inv.hosts.size(); ++i) {
    EDGEBED_ASSIGN_OR_RETURN(std::string pub, EnsureKeyPair(work + "/keys", inv.hosts[i].node_name()));
    allow += pub + " " + inv.hosts[i].node_name() + "\n";
  }
  EDGEBED_RETURN_IF_ERROR(WriteFileAtomic(work + "/keys/nodes.allow", allow));
  EDGEBED_RETURN_IF_ERROR(AllowList::Read(work + "/keys/nodes.allow").status());
  EDGEBED_RETURN_IF_ERROR(CutPartitions(inv.scenario, work + "/partitions"));

  std::vector<std::pair<std::string, std::string>> data;
  EDGEBED_ASSIGN_OR_RETURN(std::string scenario, ServerScenario(inv.scenario, &data));
  EDGEBED_RETURN_IF_ERROR(WriteFileAtomic(work + "/etc/scenario.toml", scenario));
  const std::string keys = kRemoteKeys;
  EDGEBED_RETURN_IF_ERROR(WriteFileAtomic(
      work + "/etc/server.env",
      "# made by edgebed deploy\nEDGEBED_SERVER_ARGS=\"--bind tcp://0.0.0.0:" + std::to_string(inv.port) + " --key " + keys +
          "/server.key --allow " + keys + "/nodes.allow\"\n"));
  json hosts = json::object();
  json server_files = json::array();
  for (const auto& [from, to] : data) server_files.push_back({{"src", fs::absolute(from).string()}, {"dest", to}});
  for (const auto& h : inv.hosts) {
    json j = {{"role", h.role},
              {"arch", h.arch},
              {"package", fs::absolute(inv.package_for(h.arch)).string()},
              {"package_name", fs::path(inv.package_for(h.arch)).filename().string()},
              {"shape", {{"rate_kbit", static_cast<uint64_t>(h.link.rate_bps / 1000.0)},
                         {"delay_ms", h.link.delay_ms},
                         {"loss_pct", h.link.loss_pct},
                         {"dev", h.link.dev},
                         {"on", h.link.shaped()}}}};
    if (h.role == "node") {
      const std::string name = h.node_name();
      const std::string env = work + "/etc/node-" + name + ".env";
      EDGEBED_RETURN_IF_ERROR(WriteFileAtomic(
          env, "# made by edgebed deploy\nEDGEBED_NODE_ARGS=\"--connect tcp://" + inv.server().address + ":" +
                   std::to_string(inv.port) + " --index " + std::to_string(*h.node_index) + " --key " + keys + "/" + name +
                   ".key --server-key " + keys + "/server.pub --partition " + kRemotePartition + " --device " + h.name +
                   "\"\n"));
      j["node"] = name;
      j["env"] = env;
      j["key"] = work + "/keys/" + name + ".key";
      j["partition"] = work + "/partitions/node-" + std::to_string(*h.node_index) + ".npz";
    }
    hosts[h.name] = j;
  }
  *vars = {{"edgebed_work", work},
           {"edgebed_hosts", hosts},
           {"edgebed_server_files", server_files},
           {"edgebed_remote_run", kRemoteRun},
           {"edgebed_remote_partition", kRemotePartition}};
  return WriteFileAtomic(work + "/deploy-vars.json", vars->dump(2) + "\n");
}

// ansible-playbook -i INVENTORY PLAYBOOK -e @VARS [extra...]; output to `log` ("" = this terminal).
int Playbook(const std::string& ansible, const Inventory& inv, const std::string& playbook, const std::string& vars_file,
             const std::vector<std::string>& extra, const std::string& log) {
  std::vector<std::string> args = {ansible, "-i", fs::absolute(inv.path).string(), playbook, "-e", "@" + vars_file};
  args.insert(args.end(), extra.begin(), extra.end());
  const pid_t pid = Spawn(args, log);
  return pid < 0 ? 127 : WaitExit(pid);
}

// The last complete line of metrics.jsonl, or null.
json LastRow(const std::string& file) {
  std::ifstream in(file);
  json last;
  for (std::string line; std::getline(in, line);) {
    json j = json::parse(line, nullptr, false);
    if (!j.is_discarded()) last = std::move(j);
  }
  return last;
}

// Polls the server's run (metrics.jsonl, summary.json) until summary.json says it ended, showing
// progress; then fetches the whole run folder and every host's journal. Returns the exit code.
int Follow(const std::string& ansible, const Inventory& inv, const std::string& playbook, const std::string& vars_file,
           double poll_s) {
  const std::string work = fs::absolute(inv.work_dir).string();
  const std::string summary = work + "/run/summary.json";
  fs::remove(summary);  // this deployment's run decides, not a summary fetched before
  const auto& sc = inv.scenario;
  const double limit_s = sc.join_timeout_s + sc.rounds * (sc.round_deadline_s + sc.liveness_timeout_s) + 600.0;
  const auto t0 = Clock::now();
  uint32_t shown = 0;
  while (!fs::exists(summary)) {
    if (Since(t0) > limit_s) {
      spdlog::error("deploy: no summary.json from the server {} after {:.0f} s (join timeout + rounds x deadlines); "
                    "see `journalctl -u edgebed-server` on it", inv.server().name, limit_s);
      return 1;
    }
    const int rc = Playbook(ansible, inv, playbook, vars_file, {"-e", "edgebed_fetch_all=false"}, work + "/fetch.log");
    if (rc != 0) spdlog::warn("deploy: asking {} for progress failed (exit {}; see {}/fetch.log); retrying", inv.server().name, rc, work);
    const json row = LastRow(work + "/run/metrics.jsonl");
    if (row.is_object() && row.contains("round") && row["round"].get<uint32_t>() > shown) {
      shown = row["round"].get<uint32_t>();
      const double per_round = Since(t0) / shown;
      spdlog::info("deploy: round {}/{}  accuracy {:.4f}  participants {}  about {:.0f} s to go", shown, sc.rounds,
                   row.value("test_accuracy", 0.0), row.value("participants", 0), per_round * (sc.rounds - shown));
    }
    if (!fs::exists(summary)) std::this_thread::sleep_for(std::chrono::duration<double>(poll_s));
  }
  const int rc = Playbook(ansible, inv, playbook, vars_file, {"-e", "edgebed_fetch_all=true"}, work + "/fetch.log");
  if (rc != 0) {
    spdlog::error("deploy: fetching the run folder failed (exit {}; see {}/fetch.log)", rc, work);
    return 1;
  }
  auto text = ReadFile(summary);
  const json s = text.ok() ? json::parse(text.value(), nullptr, false) : json();
  const std::string status = s.is_object() ? s.value("status", "?") : "?";
  spdlog::info("deploy: the run ended: {}; its folder is {}/run (logs of every host in {}/run/logs)", status, work, work);
  return status == "complete" ? 0 : 1;
}

}  // namespace

Status CutPartitions(const Scenario& sc, const std::string& dir) {
  std::error_code ec;
  if (fs::create_directories(dir, ec); ec) return Status::Unavailable("cannot make the folder " + dir + " (" + ec.message() + ")");
  EDGEBED_ASSIGN_OR_RETURN(DataPlan plan, PlanData(ScenarioDataSpec(sc)));
  EDGEBED_ASSIGN_OR_RETURN(auto parts, PartitionPlan(plan, ScenarioPartition(sc)));
  const auto t0 = Clock::now();
  size_t cut = 0, kept = 0;
  for (uint32_t k = 0; k < parts.size(); ++k) {
    const std::string file = dir + "/node-" + std::to_string(k) + ".npz";
    const PartitionCut stamp{ScenarioDataSpec(sc), ScenarioPartition(sc), k, plan.train_rows.size()};
    if (fs::exists(file) && ReadPartitionFile(file, stamp).ok()) {  // cut before with these settings
      ++kept;
      continue;
    }
    EDGEBED_ASSIGN_OR_RETURN(Dataset rows, LoadTrainRows(plan, parts[k]));
    EDGEBED_RETURN_IF_ERROR(WritePartitionFile(file, rows, stamp));
    ++cut;
    if (cut % 10 == 0 || k + 1 == parts.size())
      spdlog::info("partition: {}/{} files, about {:.0f} s to go", k + 1, parts.size(),
                   Since(t0) / static_cast<double>(cut) * static_cast<double>(parts.size() - k - 1));
  }
  spdlog::info("partition: {} node files in {} ({} cut, {} already there)", parts.size(), dir, cut, kept);
  return Status::Ok();
}

int RunPartition(const Scenario& sc, const std::string& dir) {
  Status st = CutPartitions(sc, dir);
  if (!st.ok()) spdlog::error("partition: {}", st.message());
  return st.ok() ? 0 : 1;
}

int RunDeploy(const DeployOptions& opt) {
  auto inv = ReadInventory(opt.inventory, EDGEBED_SOURCE_DIR);
  if (!inv.ok()) {
    spdlog::error("deploy: {}", inv.status().message());
    return 2;
  }
  spdlog::info("deploy: {} hosts: server {} ({}), {} nodes; scenario {}", inv->hosts.size(), inv->server().name,
               inv->server().address, inv->hosts.size() - 1, inv->scenario_path);
  json vars;
  if (Status st = Prepare(inv.value(), &vars); !st.ok()) {
    spdlog::error("deploy: {}", st.message());
    return 1;
  }
  const std::string work = vars["edgebed_work"];
  spdlog::info("deploy: prepared {} (keys, partitions, /etc/edgebed files, deploy-vars.json)", work);
  if (opt.prepare_only) return 0;
  const std::string ansible = FindOnPath("ansible-playbook");
  if (ansible.empty()) {
    spdlog::error("deploy: ansible-playbook is not on PATH; install Debian's ansible-core package (apt-get install ansible-core)");
    return 2;
  }
  const std::string dir = PlaybookDir(opt);
  const auto t0 = Clock::now();
  const int rc = Playbook(ansible, inv.value(), dir + "/deploy.yml", work + "/deploy-vars.json", {}, "");
  if (rc != 0) {
    spdlog::error("deploy: the playbook failed (exit {}); hosts that failed are named above (PLAY RECAP); the others "
                  "are deployed. Run edgebed deploy again once they are fixed: done steps are skipped", rc);
    return 1;
  }
  spdlog::info("deploy: {} hosts deployed in {:.0f} s", inv->hosts.size(), Since(t0));
  if (!opt.follow) return 0;
  return Follow(ansible, inv.value(), dir + "/fetch.yml", work + "/deploy-vars.json", opt.poll_s);
}

}  // namespace edgebed
