// Your own model and data, end to end: TorchScript modules (tests/data/torchscript, made by the
// committed make_test_models.py) and npz / CIFAR-10 files, trained by real node processes and node
// hosts over ZeroMQ, checked at load before any process starts.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "splitnets/learner.h"
#include "tests/e2e/e2e_run.h"
#include "tests/common/npz_writer.h"

using json = nlohmann::json;
namespace fs = std::filesystem;
using namespace edgebed;

namespace {

std::string TempDir(const std::string& tag) { return e2e::TempDir("byo", tag); }
std::string Module(const std::string& name) { return std::string(EDGEBED_SOURCE_DIR) + "/tests/data/torchscript/" + name; }
int Run(const std::string& out, const std::string& extra) {
  return e2e::RunScenario(std::string(EDGEBED_SOURCE_DIR) + "/scenarios/quick.toml", out, extra);
}
using e2e::Cleanup;
using e2e::Metrics;
using e2e::Slurp;
using e2e::Summary;

}  // namespace

TEST_CASE("TorchScript CNN and MLP train federated over the ideal and digital OTA uplinks, with node processes and simulated nodes") {
  struct Case {
    const char* module;
    const char* uplink;
    double accuracy;  // after 3 rounds of the quick scenario (4 nodes, 6,000 images)
  };
  // The built-in cnn reaches 0.69 here; OTA's quantised, superposed updates cost a little.
  for (const Case& c : {Case{"cnn.pt", "ideal", 0.6}, Case{"mlp.pt", "ideal", 0.6}, Case{"cnn.pt", "digital_ota", 0.5},
                        Case{"mlp.pt", "digital_ota", 0.5}}) {
    CAPTURE(c.module);
    CAPTURE(c.uplink);
    const std::string out = TempDir(std::string(c.module) + "-" + c.uplink);
    std::string extra = "--set model.name='\"torchscript\"' --set model.path='\"" + Module(c.module) + "\"' --set channel.uplink='\"" +
                        c.uplink + "\"' --set population.simulated=2";
    if (std::string(c.uplink) == "digital_ota") extra += " --set channel.fading='\"none\"' --set channel.snr_db=20";
    REQUIRE_MESSAGE(Run(out, extra) == 0, Slurp(out + ".log"));
    const auto rows = Metrics(out);
    REQUIRE(rows.size() == 4);
    CHECK(rows[3]["participants"] == 4);  // two node processes, two simulated nodes on a node host
    CHECK(rows[3]["failures"] == 0);
    CHECK(rows[3]["test_accuracy"].get<double>() > c.accuracy);
    CHECK(rows[3]["virtual_clock_s"].get<double>() > 0.0);  // simulated devices priced by the measured FLOPs
    const json s = Summary(out);
    CHECK(s["model"] == "torchscript");
    // final_model.pt is a TorchScript module that gives the server's test accuracy.
    ModelSpec spec;
    spec.name = "torchscript";
    spec.torchscript.path = out + "/final_model.pt";
    auto back = Learner::Create(spec, 1);
    REQUIRE(back.ok());
    auto test = LoadFashionMnist(DefaultFashionMnistDir(), false, 2000);
    REQUIRE(test.ok());
    CHECK(back.value()->Evaluate(test.value()).value().accuracy == doctest::Approx(s["final_test_accuracy"].get<double>()).epsilon(1e-9));
    Cleanup(out);
  }
}

TEST_CASE("npz data with a natural partition: one node per client id, a held-out test share, a module with its own loss") {
  auto train = LoadFashionMnist(DefaultFashionMnistDir(), true, 3000);
  REQUIRE(train.ok());
  const int64_t n = 3000;
  std::vector<int64_t> y(train->labels.begin(), train->labels.end());
  std::vector<int32_t> client(n);
  for (int64_t i = 0; i < n; ++i) client[i] = static_cast<int32_t>(100 + (y[i] * 7 + i % 3) % 6);  // 6 writers, skewed by label
  const std::string npz = TempDir("natural") + ".npz";
  testing::WriteNpz(npz, {{"x", testing::Npy("|u1", {n, 1, 28, 28}, train->images.data(), train->images.size())},
                          {"y", testing::Npy("<i8", {n}, y.data(), y.size() * 8)},
                          {"client_id", testing::Npy("<i4", {n}, client.data(), client.size() * 4)}},
                    /*deflate=*/true);
  const std::string out = TempDir("natural");
  const std::string data = "--set data.format='\"npz\"' --set data.train='\"" + npz + "\"' --set data.held_out=0.2 "
                           "--set data.mean=[0.286] --set data.std=[0.353] --set data.train_limit=0 --set data.test_limit=0 "
                           "--set model.name='\"torchscript\"' --set model.path='\"" + Module("with_loss.pt") + "\"' ";
  REQUIRE_MESSAGE(Run(out, data + "--set data.partition='\"natural\"' --set federation.nodes=5") == 0, Slurp(out + ".log"));
  const auto rows = Metrics(out);
  REQUIRE(rows.size() == 4);
  CHECK(rows[3]["participants"] == 5);
  CHECK(rows[3]["test_accuracy"].get<double>() > 0.5);
  // Each node trained on exactly one writer's rows: the sample counts are the writers' sizes (of the 80% kept).
  const std::string logs = Slurp(out + "/logs/node-0.log");
  CHECK(logs.find("(natural partition), model torchscript") != std::string::npos);
  // More nodes than writers: refused at load with the numbers, before any process.
  CHECK(Run(out, data + "--set data.partition='\"natural\"' --set federation.nodes=7") == 2);
  CHECK(Slurp(out + ".log").find("federation.nodes = 7 but only 6 of the 6 client ids hold at least data.min_samples = 10") !=
        std::string::npos);
  fs::remove(npz);
  Cleanup(out);
}

TEST_CASE("a module or data that does not fit is refused at load, naming the file, the tensor and the shapes") {
  const std::string out = TempDir("refused");
  CHECK(Run(out, "--set model.name='\"torchscript\"' --set model.path='\"" + Module("wrong_output.pt") + "\"'") == 2);
  std::string log = Slurp(out + ".log");
  CHECK(log.find("wrong_output.pt") != std::string::npos);
  CHECK(log.find("output has shape [8, 7]") != std::string::npos);
  CHECK(log.find("need [8, 10]") != std::string::npos);
  CHECK_FALSE(fs::exists(out + "/metrics.jsonl"));  // nothing started
  CHECK(Run(out, "--set model.name='\"torchscript\"'") == 2);
  CHECK(Slurp(out + ".log").find("model.name = \"torchscript\" needs model.path") != std::string::npos);
  CHECK(Run(out, "--set data.format='\"npz\"' --set data.train='\"/nonexistent/data.npz\"' --set data.held_out=0.1") == 2);
  CHECK(Slurp(out + ".log").find("data.train: cannot open /nonexistent/data.npz") != std::string::npos);
  // CIFAR-10 images (3x32x32) into the built-in cnn (1x28x28): the forward pass fails, named.
  const std::string cifar = out + "-cifar";
  fs::create_directories(cifar);
  for (const char* f : {"data_batch_1.bin", "test_batch.bin"}) {
    std::ofstream b(cifar + "/" + f, std::ios::binary);
    for (int r = 0; r < 20; ++r) {
      std::string rec(3073, static_cast<char>(r));
      rec[0] = static_cast<char>(r % 10);
      b << rec;
    }
  }
  CHECK(Run(out, "--set data.format='\"cifar10\"' --set data.dir='\"" + cifar + "\"' --set data.partition='\"iid\"' "
                 "--set data.train_limit=0 --set data.test_limit=0") == 2);
  CHECK(Slurp(out + ".log").find("forward fails on input x of shape [8, 3, 32, 32]") != std::string::npos);
  fs::remove_all(cifar);
  Cleanup(out);
}

TEST_CASE("a module that throws while training: every node's round is a recorded failure, no process crashes") {
  const std::string out = TempDir("throws");
  const int rc = Run(out, "--set model.name='\"torchscript\"' --set model.path='\"" + Module("train_throws.pt") +
                              "\"' --set federation.rounds=2 --set population.simulated=2");
  CHECK(rc != 0);  // no round reached its quorum: the run failed, and says so
  const auto rows = Metrics(out);
  REQUIRE(rows.size() == 3);
  for (size_t r = 1; r <= 2; ++r) {
    CHECK(rows[r]["participants"] == 0);
    CHECK(rows[r]["failures"] == 4);
    CHECK(rows[r]["failed_nodes"].dump().find("TRAINING_FAILED: model 'torchscript' failed in training") != std::string::npos);
    CHECK(rows[r]["failed_nodes"].dump().find("this module refuses to train") != std::string::npos);
  }
  CHECK(Summary(out)["status"] == "failed");
  const std::string node_log = Slurp(out + "/logs/node-0.log");
  CHECK(node_log.find("refuses to train") != std::string::npos);
  CHECK(node_log.find("server says shutdown") != std::string::npos);  // it answered each round and left at the end
  Cleanup(out);
}

TEST_CASE("regression from npz float targets: mse by default, and the test loss falls") {
  const int64_t n = 2000;
  std::vector<float> x(n * 8), y(n * 2);
  for (int64_t i = 0; i < n; ++i) {
    float s0 = 0, s1 = 0;
    for (int k = 0; k < 8; ++k) {
      const float v = std::sin(0.37f * static_cast<float>(i * 8 + k));
      x[i * 8 + k] = v;
      s0 += v * static_cast<float>(k % 3) * 0.2f;
      s1 -= v * 0.1f;
    }
    y[i * 2] = s0;
    y[i * 2 + 1] = s1;
  }
  const std::string npz = TempDir("regression") + ".npz";
  testing::WriteNpz(npz, {{"x", testing::Npy("<f4", {n, 8}, x.data(), x.size() * 4)}, {"y", testing::Npy("<f4", {n, 2}, y.data(), y.size() * 4)}},
                    false);
  const std::string out = TempDir("regression");
  REQUIRE_MESSAGE(Run(out, "--set data.format='\"npz\"' --set data.train='\"" + npz + "\"' --set data.held_out=0.2 "
                           "--set data.partition='\"iid\"' --set data.train_limit=0 --set data.test_limit=0 --set federation.rounds=5 "
                           "--set training.learning_rate=0.1 --set model.name='\"torchscript\"' --set model.path='\"" +
                               Module("regressor.pt") + "\"'") == 0,
                  Slurp(out + ".log"));
  const auto rows = Metrics(out);
  REQUIRE(rows.size() == 6);
  CHECK(rows[5]["test_loss"].get<double>() < 0.5 * rows[0]["test_loss"].get<double>());
  CHECK(rows[5]["participants"] == 4);
  fs::remove(npz);
  Cleanup(out);
}
