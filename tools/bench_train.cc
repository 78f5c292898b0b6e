// `edgebed bench train`: a node's training throughput (samples/s, one thread) for the same CNN built
// in C++ and loaded from TorchScript, measured in turns in one process, and the same network trained
// by Debian's PyTorch in Python when python3-torch is installed.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "record/files.h"
#include "splitnets/learner.h"
#include "splitnets/split_training.h"  // Median
#include "tools/bench.h"
#include "tools/process.h"

namespace edgebed {
namespace {

// Samples per second of one epoch over `idx`, for each of `reps` epochs.
Result<double> EpochRate(Learner& l, const Dataset& d, const std::vector<uint32_t>& idx, int rep) {
  TrainOptions o;
  o.batch_size = 32;
  o.learning_rate = 0.05f;
  o.momentum = 0.5f;
  o.seed = static_cast<uint64_t>(rep);
  EDGEBED_ASSIGN_OR_RETURN(TrainStats ts, l.Train(d, idx, o));
  return static_cast<double>(idx.size()) / ts.seconds;
}

// Debian's PyTorch on the same rows, or null when /usr/bin/python3 has no torch.
nlohmann::json PythonRates(const std::string& script, size_t samples, int reps) {
  const std::string out = (std::filesystem::temp_directory_path() / "edgebed-bench-train.json").string();
  std::filesystem::remove(out);
  const pid_t pid = Spawn({"/usr/bin/python3", script, DefaultFashionMnistDir(), std::to_string(samples),
                           std::to_string(reps), "32", "0.05", "0.5", out},
                          (std::filesystem::temp_directory_path() / "edgebed-bench-train.log").string());
  if (pid < 0 || WaitExit(pid) != 0) return nullptr;
  auto text = ReadFile(out);
  if (!text.ok()) return nullptr;
  return nlohmann::json::parse(text.value(), nullptr, false);
}

}  // namespace

int RunTrainBench(int reps, const std::string& module, const std::string& python_script) {
  SetTorchThreads(1);
  constexpr size_t kSamples = 6000;  // a default node's share
  auto data = LoadFashionMnist(DefaultFashionMnistDir(), true, kSamples);
  if (!data.ok()) {
    spdlog::error("{}", data.status().message());
    return 1;
  }
  std::vector<uint32_t> idx(data->size());
  std::iota(idx.begin(), idx.end(), 0u);
  auto cpp = Learner::Create("cnn", 1);
  ModelSpec ts_spec;
  ts_spec.name = "torchscript";
  ts_spec.torchscript.path = module;
  auto ts = Learner::Create(ts_spec, 1);
  if (!cpp.ok() || !ts.ok()) {
    spdlog::error("{}", (!cpp.ok() ? cpp.status() : ts.status()).message());
    return 1;
  }
  if (Status st = ts.value()->SetParams(cpp.value()->GetParams()); !st.ok()) {  // same weights, same layout
    spdlog::error("{} is not the built-in cnn's layout: {}", module, st.message());
    return 1;
  }
  const int n = std::max(3, reps);
  spdlog::info("bench train: the cnn, {} samples per epoch, batch 32, 1 thread; C++ and TorchScript in turns, {} epochs each",
               kSamples, n);
  std::vector<double> rate_cpp, rate_ts;
  for (int r = 0; r < n; ++r) {  // in turns, so drift in the machine's speed hits both alike
    auto a = EpochRate(*cpp.value(), data.value(), idx, r);
    auto b = EpochRate(*ts.value(), data.value(), idx, r);
    if (!a.ok() || !b.ok()) {
      spdlog::error("{}", (!a.ok() ? a.status() : b.status()).message());
      return 1;
    }
    rate_cpp.push_back(a.value());
    rate_ts.push_back(b.value());
  }
  const double c = Median(rate_cpp), t = Median(rate_ts);
  nlohmann::json out = {{"samples", kSamples}, {"epochs", n}, {"cpp_samples_per_s", c}, {"torchscript_samples_per_s", t},
                        {"torchscript_over_cpp", t / c}};
  spdlog::info("C++ cnn {:.0f} samples/s, TorchScript cnn {:.0f} samples/s: TorchScript at {:.1f}% (target >= 90%)", c, t,
               100.0 * t / c);
  const nlohmann::json py = PythonRates(python_script, kSamples, n);
  if (py.is_object() && py.contains("samples_per_s")) {
    const double p = Median(py["samples_per_s"].get<std::vector<double>>());
    out["python_torch"] = py["torch"];
    out["python_samples_per_s"] = p;
    out["cpp_over_python"] = c / p;
    spdlog::info("PyTorch {} in Python {:.0f} samples/s: C++ runs at {:.2f}x, TorchScript at {:.2f}x of it",
                 py["torch"].get<std::string>(), p, c / p, t / p);
  } else {
    spdlog::info("no PyTorch comparison: /usr/bin/python3 with torch (Debian's python3-torch) is not installed");
  }
  std::cout << out.dump(2) << std::endl;
  return 0;
}

}  // namespace edgebed
