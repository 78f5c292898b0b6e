// Deployment pieces with real processes: nodes that hold only their partition files (no data set)
// give the same run as nodes reading the data files; `edgebed deploy` refuses a bad inventory naming
// the file, host and field, and a host it cannot reach, naming it. The full deployment over SSH into
// containers is tools/deploy/check-deploy (too slow for the suite).
#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/e2e/e2e_run.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using edgebed::e2e::Metrics;
using edgebed::e2e::Slurp;
using edgebed::e2e::Start;
using edgebed::e2e::Summary;
using edgebed::e2e::Wait;

namespace {

const std::string kQuick = std::string(EDGEBED_SOURCE_DIR) + "/scenarios/quick.toml";

std::vector<std::string> Sets(const std::string& out) {
  return {"--set", "output_dir=\"" + out + "\"", "--set", "federation.rounds=2", "--set", "data.partition=\"dirichlet\""};
}

std::vector<std::string> Cmd(std::vector<std::string> head, const std::vector<std::string>& tail) {
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

// Waits (up to 60 s) for a file to exist.
bool WaitFile(const std::string& path) {
  for (int i = 0; i < 600 && !fs::exists(path); ++i) std::this_thread::sleep_for(100ms);
  return fs::exists(path);
}

std::string WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST_CASE("nodes holding only their partition files (no data set) give the same run as nodes reading the data files") {
  const std::string base = edgebed::e2e::TempDir("deploy", "parts");
  fs::remove_all(base);
  fs::create_directories(base);
  const std::string ref = base + "/ref", out = base + "/out", parts = base + "/parts";
  REQUIRE(Wait(Start(Cmd({EDGEBED_BINARY, "run", kQuick}, Sets(ref)), ref + ".log")) == 0);
  REQUIRE(Wait(Start(Cmd({EDGEBED_BINARY, "partition", kQuick, "--out", parts}, Sets(out)), base + "/partition.log")) == 0);
  for (int k = 0; k < 4; ++k) REQUIRE(fs::exists(parts + "/node-" + std::to_string(k) + ".npz"));

  // A node given another node's file says so and exits before it trains.
  const pid_t server0 = Start(Cmd({EDGEBED_BINARY, "server", "--scenario", kQuick, "--endpoint-file", base + "/ep0"},
                                  Sets(base + "/wrong")), base + "/server0.log");
  REQUIRE(WaitFile(base + "/ep0"));
  const std::string ep0 = Slurp(base + "/ep0").substr(0, Slurp(base + "/ep0").find('\n'));
  CHECK(Wait(Start({EDGEBED_BINARY, "node", "--connect", ep0, "--index", "0", "--partition", parts + "/node-1.npz"},
                   base + "/wrong-node.log")) == 1);
  CHECK(Slurp(base + "/wrong-node.log").find("node-1.npz was cut for node_index = 1; this node's run has 0") != std::string::npos);
  kill(server0, SIGTERM);
  Wait(server0);

  const pid_t server = Start(Cmd({EDGEBED_BINARY, "server", "--scenario", kQuick, "--endpoint-file", base + "/ep"}, Sets(out)),
                             base + "/server.log");
  REQUIRE(WaitFile(base + "/ep"));
  const std::string ep = Slurp(base + "/ep").substr(0, Slurp(base + "/ep").find('\n'));
  std::vector<pid_t> nodes;
  for (int k = 0; k < 4; ++k)  // --data-dir names no folder: the nodes cannot read the data set
    nodes.push_back(Start({EDGEBED_BINARY, "node", "--connect", ep, "--index", std::to_string(k), "--partition",
                           parts + "/node-" + std::to_string(k) + ".npz", "--data-dir", base + "/no-data-here"},
                          base + "/node-" + std::to_string(k) + ".log"));
  REQUIRE_MESSAGE(Wait(server) == 0, Slurp(base + "/server.log"));
  for (pid_t n : nodes) CHECK(Wait(n) == 0);
  const auto a = Metrics(ref), b = Metrics(out);
  REQUIRE(a.size() == 3);
  REQUIRE(b.size() == 3);
  for (size_t r = 1; r < a.size(); ++r) {
    CHECK(b[r]["participants"] == 4);
    CHECK(b[r]["test_accuracy"] == a[r]["test_accuracy"]);
    CHECK(b[r]["train_loss"] == a[r]["train_loss"]);
  }
  CHECK(Summary(out)["status"] == "complete");
  fs::remove_all(base);
}

TEST_CASE("edgebed deploy refuses a bad inventory, naming the file, the host and the field") {
  const std::string dir = edgebed::e2e::TempDir("deploy", "inv");
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string pkg = WriteText(dir + "/edgebed_0.1.0_amd64.deb", "not opened before the hosts are reached");
  const std::string head = "[all.vars]\nedgebed_scenario = \"" + kQuick + "\"\nedgebed_package_amd64 = \"" + pkg + "\"\n"
                           "edgebed_work = \"work\"\n"
                           "[server.hosts.srv]\nansible_host = \"127.0.0.1\"\nedgebed_arch = \"amd64\"\n";
  auto node = [](int host, int index, const std::string& extra = "", const std::string& arch = "amd64") {
    return "[nodes.hosts.pi-" + std::to_string(host) + "]\nansible_host = \"10.0.0." + std::to_string(10 + host) +
           "\"\nedgebed_node = " + std::to_string(index) + "\nedgebed_arch = \"" + arch + "\"\n" + extra;
  };
  const std::string three = node(0, 0) + node(1, 1) + node(2, 2), four = three + node(3, 3);
  int n = 0;
  auto refused = [&](const std::string& text, const std::string& what) {
    const std::string file = WriteText(dir + "/inv" + std::to_string(++n) + ".toml", text);
    const std::string log = file + ".log";
    CHECK(Wait(Start({EDGEBED_BINARY, "deploy", "--prepare-only", file}, log)) == 2);
    const std::string said = Slurp(log);
    CHECK_MESSAGE(said.find(what) != std::string::npos, said);
    CHECK_MESSAGE(said.find(file) != std::string::npos, said);
    CHECK_FALSE(fs::exists(dir + "/work"));  // nothing prepared
  };
  refused(head + node(0, 0) + node(1, 1) + node(2, 1) + node(3, 3), "hosts 'pi-1' and 'pi-2' are both node node-1");
  refused(head + three + node(3, 3, "edgebed_profile = \"toaster\"\n"),
          "host 'pi-3': edgebed_profile 'toaster' is unknown; known profiles: rpi4, pi-zero-2, phone, server");
  refused(head + three, "federation.nodes = 4 in " + kQuick + ", but the inventory has 3 nodes (no host for node index 3)");
  refused(head + four + node(4, 9), "host 'pi-4': edgebed_node must be a node index in [0, 3]");
  refused(head + three + node(3, 3, "edgebed_nodes = 1\n"), "host 'pi-3': field 'edgebed_nodes' is unknown");
  refused(head + four + "[server.hosts.srv2]\nansible_host = \"127.0.0.2\"\nedgebed_arch = \"amd64\"\n",
          "the server group holds 2 hosts; it needs exactly 1");
  refused(head + three + node(3, 3, "", "riscv"), "host 'pi-3': edgebed_arch = 'riscv'; allowed: amd64, arm64");
  refused("[all.vars]\nedgebed_package_arm64 = \"/nonexistent/edgebed_arm64.deb\"\n" + head.substr(head.find('\n') + 1) +
              three + node(3, 3, "", "arm64"),
          "host 'pi-3' is arm64, and there is no arm64 package (/nonexistent/edgebed_arm64.deb does not exist)");
  refused(head + four + "[workers.hosts.w]\n", "group 'workers' is unknown; edgebed's groups: server, nodes");
  refused(head + four + "[nodes.hosts.pi-9\n", ":");  // a TOML error: file:line:column
  refused("[all.vars]\nansible_user = \"pi\"\n" + four, "all.vars.edgebed_scenario (the scenario file) is missing");
  fs::remove_all(dir);
}

TEST_CASE("edgebed deploy to hosts it cannot reach fails naming them, after preparing the work folder") {
  const std::string dir = edgebed::e2e::TempDir("deploy", "unreachable");
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string pkg = WriteText(dir + "/edgebed_0.1.0_amd64.deb", "never copied: no host is reached");
  // Port 1 on loopback: nothing listens, so SSH is refused at once.
  std::string text = "[all.vars]\nedgebed_scenario = \"" + kQuick + "\"\nedgebed_package_amd64 = \"" + pkg + "\"\n" +
                     "edgebed_work = \"work\"\nansible_port = 1\nansible_ssh_common_args = \"-o ConnectTimeout=3\"\n" +
                     "[server.hosts.srv]\nansible_host = \"127.0.0.1\"\nedgebed_arch = \"amd64\"\n";
  for (int k = 0; k < 4; ++k)
    text += "[nodes.hosts.pi-" + std::to_string(k) + "]\nansible_host = \"127.0.0." + std::to_string(2 + k) +
            "\"\nedgebed_node = " + std::to_string(k) + "\nedgebed_arch = \"amd64\"\n";
  const std::string file = WriteText(dir + "/cluster.toml", text);
  CHECK(Wait(Start({EDGEBED_BINARY, "deploy", "--no-follow", file}, dir + "/deploy.log")) == 1);
  const std::string said = Slurp(dir + "/deploy.log");
  for (const char* host : {"srv", "pi-0", "pi-3"})
    CHECK_MESSAGE(said.find(std::string("fatal: [") + host + "]: UNREACHABLE") != std::string::npos, said);
  CHECK(said.find("the playbook failed") != std::string::npos);
  for (const char* f : {"keys/server.key", "keys/nodes.allow", "partitions/node-3.npz", "etc/scenario.toml", "deploy-vars.json"})
    CHECK_MESSAGE(fs::exists(dir + "/work/" + f), f);
  fs::remove_all(dir);
}
