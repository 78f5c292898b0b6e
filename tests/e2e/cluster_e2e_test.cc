// A cluster on Linux network namespaces: each "machine" its own namespace with its own address on a
// bridge, links shaped with tc, every link CURVE. The server, the channel process, a node behind the
// channel, a node and a node host talking to the server directly; an unknown key and a node claiming
// another's name are refused; the server is SIGKILLed and resumed and every node rejoins. Needs root
// (CI runs as root); a machine without network namespaces fails here, saying so.
#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "tests/e2e/e2e_run.h"

namespace fs = std::filesystem;
using namespace edgebed::e2e;
using namespace std::chrono_literals;

namespace {

// Runs an `ip`/`tc` command line built by this test (no peer or user text in it).
bool Sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }

// Namespaces s (server), c (channel), a, b (nodes) on a bridge; b's link shaped to `kbit` both ways.
struct Cluster {
  std::string p = "eb" + std::to_string(getpid() % 10000);
  std::string net = "10.213." + std::to_string(getpid() % 250) + ".";
  std::string Ns(char h) const { return p + h; }
  std::string Ip(char h) const { return net + std::to_string(std::string("scab").find(h) + 1); }
  bool Up(int kbit) {
    Down();
    if (!Sh("ip link add " + p + "br type bridge") || !Sh("ip link set " + p + "br up")) return false;
    for (char h : std::string("scab")) {
      const std::string ns = Ns(h), outer = p + h + "0", inner = p + h + "1";
      if (!Sh("ip netns add " + ns) || !Sh("ip link add " + outer + " type veth peer name " + inner) ||
          !Sh("ip link set " + inner + " netns " + ns) || !Sh("ip link set " + outer + " master " + p + "br") ||
          !Sh("ip link set " + outer + " up") || !Sh("ip netns exec " + ns + " ip link set lo up") ||
          !Sh("ip netns exec " + ns + " ip addr add " + Ip(h) + "/24 dev " + inner) ||
          !Sh("ip netns exec " + ns + " ip link set " + inner + " up"))
        return false;
    }
    const std::string tbf = " root tbf rate " + std::to_string(kbit) + "kbit burst 16kb latency 5s";
    return Sh("tc qdisc add dev " + p + "b0" + tbf) && Sh("ip netns exec " + Ns('b') + " tc qdisc add dev " + p + "b1" + tbf);
  }
  void Down() {
    for (char h : std::string("scab")) Sh("ip netns del " + Ns(h));
    Sh("ip link del " + p + "br");
  }
  std::vector<std::string> In(char h, std::vector<std::string> args) const {
    args.insert(args.begin(), {"ip", "netns", "exec", Ns(h), EDGEBED_BINARY});
    return args;
  }
};

template <typename F>
bool WaitUntil(F pred, std::chrono::seconds limit) {
  for (auto until = std::chrono::steady_clock::now() + limit; std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(200ms))
    if (pred()) return true;
  return false;
}

}  // namespace

TEST_CASE("a CURVE cluster on network namespaces: refused keys and impostors, a shaped link, a server killed and resumed") {
  Cluster cl;
  REQUIRE_MESSAGE(cl.Up(4000), "cannot make network namespaces, veth pairs, a bridge and tbf (root and iproute2 needed)");
  const std::string out = TempDir("cluster", "run"), keys = out + "-keys", log = out + ".log";
  fs::remove_all(out);
  fs::remove_all(keys);
  const std::string quick = std::string(EDGEBED_SOURCE_DIR) + "/scenarios/quick.toml";
  REQUIRE(Wait(Start({EDGEBED_BINARY, "keys", "--out", keys, "server", "node-0", "node-1", "channel=*relay*", "host=node-2..node-3"}, log)) == 0);
  REQUIRE(Wait(Start({EDGEBED_BINARY, "keys", "--out", keys + "/other", "intruder"}, log)) == 0);
  const std::string server_ep = "tcp://" + cl.Ip('s') + ":5555", chan_ep = "tcp://" + cl.Ip('c') + ":5600";
  const std::vector<std::string> fields = {"--set", "federation.nodes=4", "--set", "population.simulated=2", "--set",
                                           "federation.rounds=4", "--set", "data.partition=\"iid\"", "--set",
                                           "server.join_timeout_s=60"};
  auto server_cmd = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = {"server", "--scenario", quick, "--set", "output_dir=\"" + out + "\"", "--bind", server_ep,
                                  "--key", keys + "/server.key", "--allow", keys + "/nodes.allow"};
    a.insert(a.end(), fields.begin(), fields.end());
    a.insert(a.end(), extra.begin(), extra.end());
    return cl.In('s', a);
  };

  // Without keys, an address other machines reach is refused, quickly and by name.
  CHECK(Wait(Start(cl.In('s', {"server", "--scenario", quick, "--bind", "tcp://" + cl.Ip('s') + ":5556", "--set",
                               "output_dir=\"" + out + "-plain\""}),
                   out + "-plain.log")) == 2);
  CHECK(Slurp(out + "-plain.log").find("accepts connections from other machines, and there are no keys") != std::string::npos);

  pid_t server = Start(server_cmd({}), log);
  std::vector<pid_t> procs;
  std::vector<std::string> chan = {"channel", "--scenario", quick, "--server", server_ep, "--listen", chan_ep, "--key",
                                   keys + "/channel.key", "--server-key", keys + "/server.pub", "--allow", keys + "/nodes.allow"};
  chan.insert(chan.end(), fields.begin(), fields.end());
  procs.push_back(Start(cl.In('c', chan), out + ".channel.log"));
  // An unknown key, and node-1's key claiming node-0's name: neither gets in.
  const pid_t intruder = Start(cl.In('a', {"node", "--connect", server_ep, "--index", "1", "--key", keys + "/other/intruder.key",
                                           "--server-key", keys + "/server.pub"}),
                               out + ".intruder.log");
  const pid_t impostor = Start(cl.In('a', {"node", "--connect", server_ep, "--index", "0", "--id", "node-0", "--key",
                                           keys + "/node-1.key", "--server-key", keys + "/server.pub"}),
                               out + ".impostor.log");
  CHECK(Wait(impostor) != 0);  // its join is refused: it says so and exits
  CHECK(Slurp(out + ".impostor.log").find("join refused: the connection's key is bound to 'node-1', not to 'node-0'") != std::string::npos);
  procs.push_back(Start(cl.In('a', {"node", "--connect", chan_ep, "--index", "0", "--key", keys + "/node-0.key", "--server-key",
                                    keys + "/channel.pub"}),
                        out + ".node0.log"));
  procs.push_back(Start(cl.In('b', {"node", "--connect", server_ep, "--index", "1", "--key", keys + "/node-1.key", "--server-key",
                                    keys + "/server.pub"}),
                        out + ".node1.log"));
  std::vector<std::string> host = {"nodehost", "--scenario", quick, "--connect", server_ep, "--first", "2", "--count", "2",
                                   "--key", keys + "/host.key", "--server-key", keys + "/server.pub"};
  host.insert(host.end(), fields.begin(), fields.end());
  procs.push_back(Start(cl.In('b', host), out + ".host.log"));

  // Killed without warning after round 2, restarted on the same address from its checkpoint.
  REQUIRE_MESSAGE(WaitUntil([&] { auto r = Metrics(out); return r.size() >= 3; }, 240s), Slurp(log));
  kill(server, SIGKILL);
  Wait(server);
  server = Start(server_cmd({"--resume", out}), log);
  CHECK_MESSAGE(Wait(server) == 0, Slurp(log));
  for (pid_t p : procs) CHECK(Wait(p) == 0);  // each left on the resumed server's shutdown
  kill(intruder, SIGTERM);
  Wait(intruder);

  const auto rows = Metrics(out);
  REQUIRE(rows.size() == 5);
  const auto summary = Summary(out);
  CHECK(summary["status"] == "complete");
  CHECK(summary["dropped"].contains("refused_keys"));
  for (size_t r = 1; r <= 4; ++r) {
    CAPTURE(r);
    CHECK(rows[r]["participants"] == 4);  // after the restart too: the relayed node, node-1 and both hosted nodes rejoined
    // node-1's link runs at 4 Mbit/s each way: a round cannot be shorter than its model's trip down and up.
    const double trip_s = 2.0 * summary["update_bytes"].get<double>() * 8.0 / 4e6;
    CHECK(rows[r]["wall_s"].get<double>() > trip_s);
  }
  // And the shaper did the holding back, both ways (packets over the rate were queued: overlimits).
  for (const std::string& dev_cmd : {"tc -s qdisc show dev " + cl.p + "b0", "ip netns exec " + cl.Ns('b') + " tc -s qdisc show dev " + cl.p + "b1"}) {
    CAPTURE(dev_cmd);
    const std::string stats = out + ".tc";
    REQUIRE(std::system((dev_cmd + " > " + stats).c_str()) == 0);
    const std::string text = Slurp(stats);
    const size_t at = text.find("overlimits ");
    REQUIRE(at != std::string::npos);
    CHECK(std::stoull(text.substr(at + 11)) > 0);
    fs::remove(stats);
  }
  const std::string server_log = Slurp(log);
  CHECK(server_log.find("refused a connection from " + cl.Ip('a') + ": public key") != std::string::npos);
  CHECK(server_log.find("refused join from 'node-0': the connection's key is bound to 'node-1'") != std::string::npos);
  CHECK(Slurp(out + ".intruder.log").find("refused this node's key") != std::string::npos);
  CHECK(Slurp(out + ".channel.log").find("telling it to join again") != std::string::npos);  // the relay after the restart
  cl.Down();
  for (const auto& f : {log, out + ".channel.log", out + ".intruder.log", out + ".impostor.log", out + ".node0.log", out + ".node1.log",
                        out + ".host.log", out + "-plain.log"})
    fs::remove(f);
  fs::remove_all(out);
  fs::remove_all(out + "-plain");
  fs::remove_all(keys);
}
