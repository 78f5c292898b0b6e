// Real federations: the edgebed binary starts a server and node processes that talk ZeroMQ over TCP
// loopback, on real Fashion-MNIST with real libtorch training.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <tuple>

#include "splitnets/transfer.h"
#include "tests/e2e/e2e_run.h"

using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string TempDir(const std::string& tag) { return edgebed::e2e::TempDir("e2e", tag); }

// Runs `edgebed run` on a scenario (default the quick one) with overrides; returns the exit code.
int Run(const std::string& out, const std::string& extra, const std::string& scenario = "quick.toml") {
  return edgebed::e2e::RunScenario(std::string(EDGEBED_SOURCE_DIR) + "/scenarios/" + scenario, out, extra);
}
using edgebed::e2e::CheckReport;
using edgebed::e2e::Cleanup;
using edgebed::e2e::Metrics;
using edgebed::e2e::RunArgs;
using edgebed::e2e::Summary;
using edgebed::e2e::Slurp;

}  // namespace

TEST_CASE("a multi-process federation runs end to end and writes its outputs") {
  const std::string out = TempDir("basic");
  REQUIRE_MESSAGE(Run(out, "") == 0, Slurp(out + ".log"));
  const auto rows = Metrics(out);
  REQUIRE(rows.size() == 4);  // round 0 + 3 rounds
  for (const char* field : {"round", "test_accuracy", "test_loss", "participants", "failures", "uplink_bytes",
                            "downlink_bytes", "wall_s"})
    CHECK_MESSAGE(rows[3].contains(field), field);
  CHECK(rows[3]["participants"] == 4);
  CHECK(rows[3]["failures"] == 0);
  CHECK(rows[3]["uplink_bytes"].get<double>() > 4 * 400000);  // four ~424 kB CNN updates
  // The link counts the update's bits too, not only the Envelope's (the update rides in its own frame).
  CHECK(rows[3]["uplink_payload_bits"].get<double>() > 8.0 * 4 * 400000);
  CHECK(rows[3]["test_accuracy"].get<double>() > rows[0]["test_accuracy"].get<double>() + 0.3);
  for (const char* f : {"metrics.png", "metrics.csv", "final_model.pt", "summary.json", "scenario.toml"})
    CHECK_MESSAGE(fs::exists(out + "/" + f), f);
  CHECK(fs::file_size(out + "/metrics.png") > 1000);
  const std::string csv = Slurp(out + "/metrics.csv");
  CHECK(csv.find(",train_loss,selected,dropouts,uplink_airtime_s,uplink_tx_energy_j,lost_packets,") != std::string::npos);
  CheckReport(out, {"accuracy", "loss", "bytes", "time", "participation", "memory"});
  const std::string report = Slurp(out + "/report.html");
  CHECK(report.find("<td>complete</td>") != std::string::npos);  // the launcher's last report has the summary
  for (const char* fetch : {"src=", "<link", "@import"})              // nothing to fetch: self-contained
    CHECK_MESSAGE(report.find(fetch) == std::string::npos, fetch);
  Cleanup(out);
}

TEST_CASE("federated evaluation: the round's participants evaluate the new model on their own data") {
  const std::string out = TempDir("node-eval");
  REQUIRE_MESSAGE(Run(out, "--set federation.rounds=2 --set federation.evaluate_every=1 --set population.simulated=2") == 0,
                  Slurp(out + ".log"));
  const auto rows = Metrics(out);
  REQUIRE(rows.size() == 3);
  for (size_t i = 1; i < 3; ++i) {
    const auto& e = rows[i]["node_eval"];
    CHECK(e["asked"] == 4);  // two node processes and two simulated nodes
    CHECK(e["answered"] == 4);
    CHECK(e["samples"] == 6000);  // together they hold the whole training subset
    CHECK(e["accuracy"].get<double>() > 0.3);
    CHECK(e["accuracy"].get<double>() <= 1.0);
  }
  Cleanup(out);
}

TEST_CASE("a node process killed mid-round is a recorded failure and the run finishes") {
  const std::string out = TempDir("kill");
  REQUIRE_MESSAGE(Run(out, "--set 'faults.crash=[{node = 1, round = 2}]' --set server.liveness_timeout_s=3.0") == 0,
                  Slurp(out + ".log"));
  const auto rows = Metrics(out);
  REQUIRE(rows.size() == 4);
  CHECK(rows[1]["participants"] == 4);
  CHECK(rows[2]["participants"] == 3);
  CHECK(rows[2]["failures"] == 1);
  CHECK(rows[2]["aggregated"] == true);
  CHECK(rows[2]["failed_nodes"][0]["node"] == "node-1");
  // Its TCP connection closed with the process: failed at once, not after the liveness timeout.
  CHECK(rows[2]["failed_nodes"][0]["reason"].get<std::string>().find("connection closed") != std::string::npos);
  CHECK(rows[3]["selected"] == 3);  // the dead node is no longer selected
  CHECK(rows[3]["participants"] == 3);
  CHECK(Slurp(out + "/logs/node-1.log").find("killing this process mid-round 2") != std::string::npos);
  Cleanup(out);
}

TEST_CASE("same scenario and seed give the same metrics; another seed does not") {
  const std::string a = TempDir("seed-a"), b = TempDir("seed-b"), c = TempDir("seed-c");
  const std::string small = "--set federation.rounds=2 --set data.train_limit=3000 ";
  REQUIRE(Run(a, small) == 0);
  REQUIRE(Run(b, small) == 0);
  REQUIRE(Run(c, small + "--set seed=8") == 0);
  const auto ra = Metrics(a), rb = Metrics(b), rc = Metrics(c);
  REQUIRE(ra.size() == 3);
  REQUIRE(rb.size() == 3);
  REQUIRE(rc.size() == 3);
  for (size_t i = 0; i < ra.size(); ++i) {
    for (const char* f : {"test_accuracy", "test_loss", "train_loss", "uplink_bytes", "downlink_bytes", "participants"})
      CHECK_MESSAGE(ra[i][f] == rb[i][f], "round " << i << " " << f);
  }
  CHECK(ra[2]["test_loss"] != rc[2]["test_loss"]);
  CHECK(Slurp(a + "/final_model.pt") == Slurp(b + "/final_model.pt"));
  CHECK(Summary(a)["run_id"] != Summary(b)["run_id"]);  // the same experiment twice: two runs

  // edgebed compare: one table line per run with its rows' figures, and overlaid curves.
  const std::string cmp = TempDir("compare");
  REQUIRE_MESSAGE(RunArgs({EDGEBED_BINARY, "compare", a, c, "--out", cmp, "--label", "seed 1", "--label", "seed 8",
                           "--metric", "test_accuracy", "--metric", "uplink_bytes"}, cmp + ".log") == 0,
                  Slurp(cmp + ".log"));
  const std::string table = Slurp(cmp + "/compare.csv");
  INFO(table);
  for (const auto& [label, dir, rows] : {std::tuple{std::string("seed 1"), a, ra}, std::tuple{std::string("seed 8"), c, rc}}) {
    const size_t at = table.find("\"" + label + "\",\"" + dir + "\"");
    REQUIRE(at != std::string::npos);
    const std::string line = table.substr(at, table.find('\n', at) - at);
    char want[64];
    std::snprintf(want, sizeof want, ",2,%.4f,", rows[2]["test_accuracy"].get<double>());  // rounds, final accuracy
    CHECK(line.find(want) != std::string::npos);
    const double up_mb = (rows[1]["uplink_bytes"].get<double>() + rows[2]["uplink_bytes"].get<double>()) / 1e6;
    std::snprintf(want, sizeof want, ",%.3f,", up_mb);
    CHECK(line.find(want) != std::string::npos);
  }
  CHECK(table.find(",\"quick\",\"federated learning\",\"complete\",") != std::string::npos);
  edgebed::e2e::CheckPage(cmp + "/compare.html", {"cmp_0", "cmp_1"});
  CHECK(RunArgs({EDGEBED_BINARY, "compare", a, "--x", "minutes", "--out", cmp}, cmp + ".log") != 0);
  CHECK(Slurp(cmp + ".log").find("--x") != std::string::npos);
  for (const auto& d : {a, b, c, cmp}) Cleanup(d);
}

TEST_CASE("a bad scenario fails at load naming the field, before any process starts") {
  const std::string out = TempDir("bad");
  CHECK(Run(out, "--set data.alpha=-1") == 2);
  CHECK(Slurp(out + ".log").find("data.alpha = -1 is out of range (0, 1e+06]") != std::string::npos);
  CHECK_FALSE(fs::exists(out + "/metrics.jsonl"));
  Cleanup(out);
}

TEST_CASE("the channel as its own process: relayed and in-process nodes see the same channel") {
  const std::string small = "--set federation.rounds=2 --set data.train_limit=3000 --set channel.snr_db=8 ";
  for (const char* uplink : {"digital", "analog_ota"}) {
    const std::string tag = uplink;
    const std::string direct = TempDir(tag + "-direct"), relayed = TempDir(tag + "-relay");
    const std::string common = small + "--set channel.uplink=" + tag + " ";
    // digital: a mixed federation (nodes 0-1 through the channel process, 2-3 direct);
    // analog OTA: every node through it, so that one channel superposes them all.
    const std::string relay_nodes = tag == "digital" ? "2" : "4";
    REQUIRE_MESSAGE(Run(direct, common) == 0, Slurp(direct + ".log"));
    REQUIRE_MESSAGE(Run(relayed, common + "--set channel.relay_nodes=" + relay_nodes) == 0, Slurp(relayed + ".log"));
    const auto a = Metrics(direct), b = Metrics(relayed);
    REQUIRE(a.size() == 3);
    REQUIRE(b.size() == 3);
    for (size_t i = 1; i < a.size(); ++i) {
      INFO(tag << " round " << i);
      CHECK(b[i]["participants"] == 4);
      CHECK(a[i]["test_accuracy"] == b[i]["test_accuracy"]);  // channel draws depend on (seed, node, round) only
      CHECK(a[i]["lost_packets"] == b[i]["lost_packets"]);
      CHECK(a[i]["uplink_tx_energy_j"].get<double>() ==
            doctest::Approx(b[i]["uplink_tx_energy_j"].get<double>()).epsilon(1e-6));
      CHECK(b[i]["link_per_node"].size() == 4);
    }
    if (tag == "digital") {
      CHECK(b[1]["lost_packets"].get<int>() > 0);  // 8 dB Rayleigh loses packets
    } else {
      CHECK(b[1]["ota"]["via"] == "channel process");
      CHECK(b[1]["ota"]["active"] == a[1]["ota"]["active"]);
    }
    CHECK(Slurp(relayed + "/logs/channel.log").find("joins through the channel") != std::string::npos);
    if (tag == "digital") CheckReport(direct, {"channel_loss", "channel_airtime", "channel_nodes", "channel_snr"});
    Cleanup(direct);
    Cleanup(relayed);
  }
}

TEST_CASE("a sweep runs one scenario per value and draws one plot; bad values fail before any run") {
  const std::string out = TempDir("sweep");
  Cleanup(out);
  const std::string base = std::string(EDGEBED_BINARY) + " sweep " + EDGEBED_SOURCE_DIR +
                           "/scenarios/quick.toml --field channel.snr_db --out " + out +
                           " --set federation.rounds=1 --set data.train_limit=2000 --set channel.uplink=digital";
  int rc = std::system((base + " --values 5,-45 > " + out + ".log 2>&1").c_str());
  CHECK(WEXITSTATUS(rc) == 2);
  CHECK(Slurp(out + ".log").find("channel.snr_db = -45 is out of range [-30, 60]") != std::string::npos);
  CHECK_FALSE(fs::exists(out + "/channel.snr_db=5"));
  rc = std::system((base + " --values 0,20 > " + out + ".log 2>&1").c_str());
  REQUIRE_MESSAGE(WEXITSTATUS(rc) == 0, Slurp(out + ".log"));
  CHECK(fs::file_size(out + "/sweep.png") > 1000);
  CHECK(Slurp(out + "/compare.html").find("snr_db = 20 dB") != std::string::npos);  // legends with units
  CHECK(Slurp(out + "/compare.csv").find("\"snr_db = 0 dB\"") != std::string::npos);
  const std::string summary = Slurp(out + "/summary.csv");
  CHECK(summary.find("channel.snr_db,final_test_accuracy") == 0);
  CHECK(Metrics(out + "/channel.snr_db=0")[1]["lost_packets"].get<int>() >
        Metrics(out + "/channel.snr_db=20")[1]["lost_packets"].get<int>());
  Cleanup(out);
}

TEST_CASE("a mixed federation: real node processes and simulated nodes on node hosts, one server") {
  const std::string out = TempDir("mixed");
  REQUIRE_MESSAGE(Run(out, "--set federation.nodes=24 --set population.simulated=20 --set population.hosts=2 "
                           "--set 'population.profiles=\"rpi4:1,pi-zero-2:1\"' --set federation.rounds=2 "
                           "--set data.train_limit=6000") == 0,
                  Slurp(out + ".log"));
  const auto rows = Metrics(out);
  REQUIRE(rows.size() == 3);
  for (size_t i = 1; i < rows.size(); ++i) {
    CHECK(rows[i]["selected"] == 24);
    CHECK(rows[i]["participants"] == 24);
    CHECK(rows[i]["virtual_round_s"].get<double>() > 0.0);
    CHECK(rows[i]["energy_compute_j"].get<double>() > 0.0);
    CHECK(rows[i]["energy_radio_j"].get<double>() > 0.0);
  }
  CHECK(rows[2]["virtual_clock_s"].get<double>() > rows[1]["virtual_clock_s"].get<double>());
  CHECK(rows[2]["test_accuracy"].get<double>() > 0.5);
  CHECK(Slurp(out + "/logs/host-1.log").find("hosting 10 simulated nodes") != std::string::npos);
  CHECK(Slurp(out + "/logs/server.log").find("node-3 joined (index 3, x86_64 process)") != std::string::npos);
  CheckReport(out, {"participation", "time"});  // population: who took part, and the virtual clock
  Cleanup(out);
}

TEST_CASE("virtual deadline: stragglers are dropped; deadline-aware selection leaves them out") {
  // A round of this CNN (2.23 MFLOP forward) on 1,500 samples: a Pi Zero 2 (2 GFLOP/s, 20 Mbit/s)
  // needs 5.0 s of training + 0.34 s of transfers, a phone (10 GFLOP/s, 30/10 Mbit/s) 1.0 + 0.45 s:
  // a 3 s deadline separates them.
  const std::string common = "--set population.simulated=4 --set 'population.profiles=\"pi-zero-2:1,phone:1\"' "
                             "--set federation.rounds=2 --set server.virtual_deadline_s=3.0 --set data.partition=iid ";
  const std::string a = TempDir("strag-random"), b = TempDir("strag-deadline");
  // Random selection picks the Pi Zeros too: their updates come late, no round meets the quorum, and
  // a run that never aggregated says so (summary status "failed", exit code 1).
  REQUIRE_MESSAGE(Run(a, common + "--set federation.selection=random") == 1, Slurp(a + ".log"));
  const json sa = json::parse(Slurp(a + "/summary.json"));
  CHECK(sa["status"] == "failed");
  CHECK(sa["stop_reason"].get<std::string>().find("no round aggregated") != std::string::npos);
  REQUIRE_MESSAGE(Run(b, common + "--set federation.selection=deadline") == 0, Slurp(b + ".log"));
  const auto ra = Metrics(a), rb = Metrics(b);
  REQUIRE(ra.size() == 3);
  REQUIRE(rb.size() == 3);
  int stragglers = 0, excluded = 0;
  for (size_t i = 1; i < 3; ++i) {
    stragglers += ra[i]["stragglers"].get<int>();
    CHECK(rb[i]["stragglers"] == 0);
    CHECK(rb[i]["participants"].get<int>() > 0);
    excluded += rb[i]["excluded_by_deadline"].get<int>();
    if (ra[i]["stragglers"].get<int>() > 0)
      CHECK(ra[i]["virtual_round_s"].get<double>() == doctest::Approx(3.0));  // waited until the deadline
    CHECK(rb[i]["virtual_round_s"].get<double>() == doctest::Approx(1.45).epsilon(0.05));
  }
  CHECK(stragglers > 0);
  CHECK(excluded == stragglers);  // the nodes left out are those that would have been late
  Cleanup(a);
  Cleanup(b);
}

TEST_CASE("over-commitment selects more nodes and aggregates the first K updates") {
  const std::string out = TempDir("overcommit");
  REQUIRE_MESSAGE(Run(out, "--set federation.nodes=40 --set population.simulated=40 --set federation.fraction=0.25 "
                           "--set federation.over_commit=0.5 --set model.name=logreg --set federation.rounds=2 "
                           "--set 'population.profiles=\"rpi4:1,pi-zero-2:1,phone:1\"'") == 0,
                  Slurp(out + ".log"));
  const auto rows = Metrics(out);
  REQUIRE(rows.size() == 3);
  for (size_t i = 1; i < 3; ++i) {
    CHECK(rows[i]["selected"] == 15);  // ceil(10 * 1.5)
    CHECK(rows[i]["participants"] == 10);
    CHECK(rows[i]["over_committed"] == 5);
  }
  Cleanup(out);
}

TEST_CASE("digital OTA end to end: VQ indices over the superposing channel, AMP-DA, collect, train, evaluate") {
  const std::string out = TempDir("dota"), counts = out + "-counts.bin";
  fs::remove(counts);
  REQUIRE_MESSAGE(Run(out, "--set channel.uplink='\"digital_ota\"' --set channel.fading='\"none\"' --set channel.snr_db=20 "
                           "--set ota.decoder='\"amp_da\"' --set ota.collect='\"" + counts + "\"'") == 0,
                  Slurp(out + ".log"));
  const auto rows = Metrics(out);
  REQUIRE(rows.size() == 4);
  std::ifstream sj(out + "/summary.json");
  const json summary = json::parse(sj);
  const uint64_t blocks = (summary["parameters"].get<uint64_t>() + 19) / 20;
  for (size_t r = 1; r <= 3; ++r) {
    const json& o = rows[r]["ota"];
    CHECK(o["active"] == 4);
    CHECK(o["k_hat"] == 4);
    CHECK(o["blocks"] == blocks);
    CHECK(o["count_nmse"].get<double>() < 0.01);  // 20 dB per node: nearly every block decoded exactly
    CHECK(rows[r]["uplink_payload_bits"] == 4 * blocks * 7);  // log2(128) bits per block per node
    CHECK(rows[r]["uplink_channel_uses"].get<double>() == doctest::Approx(blocks * 32.0));  // shared: counted once
    CHECK(rows[r]["uplink_bytes"].get<double>() < 4 * 400000 / 10.0);  // indices, not 424 kB float updates
  }
  CHECK(rows[3]["test_accuracy"].get<double>() > rows[0]["test_accuracy"].get<double>() + 0.3);

  // The collected indices train a (tiny) AMP-DA-Net, which then decodes beside AMP-DA.
  const std::string net = out + "-net/new/folder.pt", nmse = out + "-nmse";  // ota train makes the folders
  const std::string bin = std::string(EDGEBED_BINARY);
  CHECK(std::system((bin + " ota train --data " + counts + " --out " + net +
                     " --steps 20 --layers 2 --filters 4 --batch 16 --ka-min 2 --ka-max 4 > " + out + "-train.log 2>&1")
                        .c_str()) == 0);
  REQUIRE(fs::exists(net));
  CHECK(fs::file_size(net + ".train.csv") > 0);
  // A training log that cannot be written is an error naming it, before any training.
  CHECK(std::system((bin + " ota train --data " + counts + " --out /dev/full/net.pt --steps 20 > " + out +
                     "-train-bad.log 2>&1").c_str()) != 0);
  CHECK(Slurp(out + "-train-bad.log").find("/dev/full/net.pt.train.csv") != std::string::npos);
  CHECK(std::system((bin + " ota nmse --data " + counts + " --net " + net + " --out " + nmse +
                     " --blocks 250 --snrs 10,20 --ka-min 2 --ka-max 4 > " + out + "-nmse.log 2>&1")
                        .c_str()) == 0);
  std::ifstream csv(nmse + "/nmse.csv");
  std::vector<std::string> lines;
  for (std::string l; std::getline(csv, l);) lines.push_back(l);
  CHECK(lines.size() == 5);  // header + 2 SNRs x 2 decoders
  CHECK(fs::exists(nmse + "/nmse.png"));
  CheckReport(out, {"ota_error", "channel_airtime"});  // the run's decoder error by round
  // A damaged decoder file is refused naming it, before any process starts.
  std::ofstream(net) << "not a decoder";
  CHECK(Run(out, "--set channel.uplink='\"digital_ota\"' --set ota.decoder='\"amp_da_net\"' --set ota.decoder_path='\"" +
                     net + "\"'") == 2);
  CHECK(Slurp(out + ".log").find("ota.decoder_path") != std::string::npos);
  for (const auto& p : {counts, out + "-train.log", out + "-train-bad.log", out + "-nmse.log"}) fs::remove(p);
  fs::remove_all(nmse);
  fs::remove_all(out + "-net");
  Cleanup(out);
}

TEST_CASE("digital OTA with majority vote and a sign-flipping node still learns; error-free counts are exact") {
  const std::string out = TempDir("dota-robust");
  REQUIRE_MESSAGE(Run(out, "--set channel.uplink='\"digital_ota\"' --set ota.decoder='\"exact\"' "
                           "--set ota.aggregate='\"majority\"' --set 'faults.corrupt=[{node = 1, kind = \"sign_flip\"}]'") == 0,
                  Slurp(out + ".log"));
  const auto rows = Metrics(out);
  REQUIRE(rows.size() == 4);
  CHECK(rows[3]["ota"]["decoder"] == "exact");
  CHECK(rows[3]["test_accuracy"].get<double>() > rows[0]["test_accuracy"].get<double>() + 0.3);
  Cleanup(out);
}

TEST_CASE("federated transfer learning with MobileTL over every uplink: only the trained tensors travel") {
  const std::string backbone = std::string(EDGEBED_SOURCE_DIR) + "/splitnets/backbones/irbnet_c0-4.pt";
  const std::string common = "--set model.name=irbnet --set transfer.backbone='\"" + backbone +
                             "\"' --set data.classes='\"5-9\"' --set federation.rounds=2 --set data.train_limit=4000 "
                             "--set channel.snr_db=20 --set channel.fading='\"none\"' ";
  for (const std::string uplink : {"ideal", "digital", "analog_ota", "digital_ota"}) {
    const std::string out = TempDir("transfer-" + uplink);
    REQUIRE_MESSAGE(Run(out, common + "--set channel.uplink=" + uplink) == 0, Slurp(out + ".log"));
    const auto rows = Metrics(out);
    REQUIRE(rows.size() == 3);
    std::ifstream sj(out + "/summary.json");
    const json summary = json::parse(sj);
    CHECK(summary["trainable_blocks"] == 2);
    const double update = summary["update_bytes"].get<double>(), full = summary["full_model_bytes"].get<double>();
    CHECK(update < 0.6 * full);  // the top 2 blocks and the head of a 180 kB network
    INFO(uplink);
    CHECK(rows[2]["test_accuracy"].get<double>() > rows[0]["test_accuracy"].get<double>() + 0.3);
    CHECK(rows[1]["peak_train_kb_max"].get<double>() > 0);  // measured by the nodes' counting allocator
    // what the nodes' autograd graphs held at backward, measured there, is the analytic count
    CHECK(rows[1]["kept_for_backward_kb_max"].get<double>() * 1024.0 ==
          doctest::Approx(summary["kept_for_backward_bytes_analytic"].get<double>()).epsilon(1e-12));
    if (uplink == "ideal") {
      CHECK(rows[1]["uplink_bytes"].get<double>() > 4 * update);
      CHECK(rows[1]["uplink_bytes"].get<double>() < 4 * update * 1.1);
      CheckReport(out, {"memory", "accuracy"});  // MobileTL: the memory kept for backward beside its analytic count
      CHECK(Slurp(out + "/report.html").find("kept for backward, analytic") != std::string::npos);
    }
    Cleanup(out);
  }
  // a budget that fits one block: every node trains one, and the server expects that layout
  const std::string out = TempDir("transfer-budget");
  const double one_block_kb = edgebed::TrainingBytesAnalytic("mobiletl", 1, 32, 5, true) / 1024.0 + 1.0;
  REQUIRE_MESSAGE(Run(out, common + "--set transfer.memory_budget_kb=" + std::to_string(one_block_kb)) == 0,
                  Slurp(out + ".log"));
  {
    std::ifstream sj(out + "/summary.json");
    const json summary = json::parse(sj);
    CHECK(summary["trainable_blocks"] == 1);
    CHECK(Metrics(out)[2]["participants"] == 4);
  }
  // a budget below what one block needs is refused before any process starts, naming the minimum
  CHECK(Run(out, common + "--set transfer.memory_budget_kb=50") == 2);
  CHECK(Slurp(out + ".log").find("transfer.memory_budget_kb = 50 KB is below") != std::string::npos);
  // a missing backbone too, naming the file and the command that makes one
  CHECK(Run(out, "--set model.name=irbnet --set transfer.backbone='\"/nonexistent/bb.pt\"'") == 2);
  CHECK(Slurp(out + ".log").find("edgebed transfer pretrain --out /nonexistent/bb.pt") != std::string::npos);
  Cleanup(out);
}

TEST_CASE("split learning across processes: noisy bottlenecks, a node killed mid-round, inference under a trace") {
  // Three node processes train the slimmable encoder against the server's decoder over a digital
  // link at 5 dB (QPSK, no FEC, AWGN: bit errors reach the decoder); node 2 dies half way through
  // round 1. Then node 0 serves 60 requests while the link drops to 40 kbit/s for 2 s.
  const std::string out = TempDir("split");
  const std::string extra =
      "--set data.train_limit=3000 --set data.test_limit=500 --set federation.nodes=3 --set federation.rounds=2 "
      "--set server.liveness_timeout_s=4.0 --set 'faults.crash=[{node = 2, round = 1}]' "
      "--set channel.uplink='\"digital\"' --set channel.snr_db=5.0 --set channel.fading='\"none\"' "
      "--set channel.fec='\"none\"' --set split.inference.requests=60 "
      "--set split.inference.deadline_ms=60.0 --set split.inference.node_gflops=1.0 "
      "--set split.inference.server_gflops=10.0 "
      "--set 'split.bandwidth=[{t_s = 0.0, kbps = 1000.0}, {t_s = 2.0, kbps = 40.0}, {t_s = 4.0, kbps = 1000.0}]'";
  REQUIRE_MESSAGE(Run(out, extra, "split_inference.toml") == 0, Slurp(out + ".log"));
  const auto rows = Metrics(out);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0]["participants"] == 2);
  REQUIRE(rows[0]["failed_nodes"].size() == 1);
  CHECK(rows[0]["failed_nodes"][0]["node"] == "node-2");
  CHECK(rows[0]["failed_nodes"][0]["reason"].get<std::string>().find("connection closed") != std::string::npos);
  CHECK(rows[1]["participants"] == 2);
  CHECK(rows[1]["accuracy_by_width"].size() == 4);
  CHECK(rows[1]["test_accuracy"].get<double>() > 0.4);
  // QPSK at Es/N0 = 5 dB: Q(sqrt(10^0.5)) = 0.0375 of the bottleneck's bits flip.
  CHECK(rows[1]["bottleneck_ber"].get<double>() > 0.030);
  CHECK(rows[1]["bottleneck_ber"].get<double>() < 0.045);
  CHECK(rows[1].contains("channel_accuracy_by_width"));  // the last round is also evaluated over the link
  CHECK(rows[1]["uplink_bottleneck_bytes_by_width"]["1.000"].get<double>() > 0);
  // The two nodes' batches share decoder steps, and the gradients come back at 8 bits: a byte per
  // bottleneck value plus a 4-byte scale per sample and width (three widths per step).
  CHECK(rows[1]["decoder_steps"].get<uint64_t>() < rows[1]["steps"].get<uint64_t>());
  double bottleneck_bytes = 0;
  for (const auto& [w, b] : rows[1]["uplink_bottleneck_bytes_by_width"].items()) bottleneck_bytes += b.get<double>();
  CHECK(rows[1]["downlink_gradient_bytes"].get<double>() == bottleneck_bytes + 4.0 * 3 * rows[1]["samples"].get<double>());
  CHECK(rows[1]["gradient_quant_nmse"].get<double>() > 0.0);
  CHECK(rows[1]["gradient_quant_nmse"].get<double>() < 1e-3);  // about (scale / 2)^2 / 3 per value

  const json summary = json::parse(Slurp(out + "/summary.json"));
  const auto& inf = summary["inference"];
  REQUIRE(inf["passes"].size() == 2);
  CHECK(inf["passes"][0]["controller"] == "adaptive");
  CHECK(inf["passes"][1]["controller"] == "fixed");
  CHECK(inf["passes"][1]["mean_width"] == 1.0);
  CHECK(inf["fixed_missed"].get<int>() >= 20);
  CHECK(inf["passes"][0]["mean_width"].get<double>() < 1.0);
  // During the drop (40 kbit/s) the full bottleneck (392 B) needs 78 ms of air: the fixed width
  // misses the 60 ms deadline every time; the controller narrows (196 B: 39 ms of air, 2.9 MFLOPs at
  // 1 GFLOP/s: 3 ms) and meets it, all but the requests that find out about the drop. Compute time is
  // virtual (FLOPs at node_gflops and server_gflops), so the load of the test machine does not count.
  std::ifstream csv(out + "/inference.csv");
  int lines = 0, drop[2] = {0, 0}, met[2] = {0, 0};
  std::string l;
  std::getline(csv, l);
  CHECK(l.find("pass,controller,request,t_s,kbps,width") == 0);
  for (; std::getline(csv, l); ++lines) {
    const std::vector<std::string> f = edgebed::e2e::CsvFields(l);
    REQUIRE(f.size() == 15);
    // node_ms is the encoder's FLOPs at 1 GFLOP/s: the summary's MFLOPs at that width, in ms
    for (const auto& w : summary["widths"])
      if (std::abs(w["width"].get<double>() - std::stod(f[5])) < 1e-9)
        CHECK(std::stod(f[7]) == doctest::Approx(w["encoder_mflops"].get<double>()).epsilon(1e-5));
    if (std::stod(f[4]) != 40.0) continue;
    const int p = std::stoi(f[0]) - 1;
    ++drop[p];
    met[p] += std::stoi(f[11]);
  }
  CHECK(lines == 2 * 60);
  CHECK(drop[0] == 20);
  CHECK(drop[1] == 20);
  CHECK(met[1] == 0);
  // The rate estimate is the previous transfer's: the first request in the drop goes out wide and
  // misses; every later one fits at width 0.5 (39 + 3 + 0.2 ms < 0.9 x 60), and 0.75 (59 + 6.5 ms)
  // does not.
  CHECK(met[0] == 19);
  CHECK(fs::exists(out + "/final_decoder.pt"));
  CHECK(fs::exists(out + "/final_encoder.pt"));
  CheckReport(out, {"accuracy_by_width", "split_bytes", "bytes_by_width", "split_channel", "inference_latency",
                    "inference_width", "inference_rate"});
  Cleanup(out);
}

TEST_CASE("split learning with separate encoders: nothing is averaged, the server evaluates each node's encoder") {
  const std::string out = TempDir("split-separate");
  REQUIRE_MESSAGE(Run(out, "--set data.train_limit=2000 --set data.test_limit=300 --set federation.nodes=2 "
                           "--set federation.rounds=2 --set split.heads='\"separate\"' --set split.train_width=0.5 "
                           "--set split.inference.requests=0",
                      "split_inference.toml") == 0,
                  Slurp(out + ".log"));
  const auto rows = Metrics(out);
  REQUIRE(rows.size() == 2);
  CHECK(rows[1]["participants"] == 2);
  // train_width = 0.5: only that width's bottleneck crossed the link, 196 B for each of the 2,000 samples.
  CHECK(rows[1]["uplink_bottleneck_bytes_by_width"]["0.500"].get<double>() == doctest::Approx(2000.0 * 196));
  CHECK(rows[1]["uplink_bottleneck_bytes_by_width"]["1.000"].get<double>() == 0.0);
  CHECK(rows[1]["accuracy_by_width"]["0.500"].get<double>() > 0.5);
  const json summary = json::parse(Slurp(out + "/summary.json"));
  CHECK(summary["heads"] == "separate");
  CHECK(summary["inference"].is_null());
  CHECK(!fs::exists(out + "/final_encoder.pt"));  // no single encoder: each node keeps its own
  CHECK(fs::exists(out + "/final_decoder.pt"));
  Cleanup(out);
}
