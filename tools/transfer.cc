#include "tools/transfer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

#include "codecs/rng.h"
#include "splitnets/learner.h"
#include "splitnets/transfer.h"
#include "record/files.h"
#include "record/progress.h"

namespace edgebed {
namespace {

using json = nlohmann::json;

Result<std::pair<Dataset, Dataset>> LoadClasses(const std::string& classes) {
  auto cls = ParseClasses(classes, "--classes");
  if (!cls.ok()) return cls.status();
  auto train = LoadFashionMnist(DefaultFashionMnistDir(), true);
  if (!train.ok()) return train.status();
  auto test = LoadFashionMnist(DefaultFashionMnistDir(), false);
  if (!test.ok()) return test.status();
  return std::make_pair(SelectClasses(train.value(), cls.value()), SelectClasses(test.value(), cls.value()));
}

std::vector<uint32_t> FirstShuffled(size_t n, uint32_t limit, uint64_t seed) {
  std::vector<uint32_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0u);
  Rng rng = MakeRng(seed, "transfer-train-subset");
  std::shuffle(idx.begin(), idx.end(), rng);
  if (limit > 0 && limit < idx.size()) idx.resize(limit);
  return idx;
}

// `progress` counts epochs; it advances with every batch.
TrainOptions Options(const TransferToolOptions& opt, int epoch, Progress* progress, double epochs_before) {
  TrainOptions t;
  t.epochs = 1;
  t.batch_size = opt.batch;
  t.learning_rate = static_cast<float>(opt.learning_rate);
  t.momentum = static_cast<float>(opt.momentum);
  t.seed = DeriveSeed(opt.seed, "epoch-" + std::to_string(epoch));
  t.on_progress = [progress, epochs_before](float f) {
    progress->Update(epochs_before + f);
    return true;
  };
  return t;
}

// One epoch of training, then the test set; the first failure of either.
Result<std::pair<TrainStats, EvalStats>> TrainAndTest(Learner& l, const Dataset& train, const std::vector<uint32_t>& idx,
                                                      const TrainOptions& o, const Dataset& test) {
  EDGEBED_ASSIGN_OR_RETURN(TrainStats ts, l.Train(train, idx, o));
  EDGEBED_ASSIGN_OR_RETURN(EvalStats es, l.Evaluate(test));
  return std::make_pair(ts, es);
}

}  // namespace

int RunPretrain(const TransferToolOptions& opt) {
  if (opt.out.empty()) {
    spdlog::error("transfer pretrain: --out (the backbone file) is required");
    return 2;
  }
  SetTorchThreads(opt.threads);
  auto data = LoadClasses(opt.classes.empty() ? "0-4" : opt.classes);
  if (!data.ok()) {
    spdlog::error("{}", data.status().message());
    return 2;
  }
  const auto& [train, test] = data.value();
  ModelSpec spec;
  spec.name = opt.model;
  spec.num_classes = train.num_classes;
  auto learner = Learner::Create(spec, opt.seed);
  if (!learner.ok()) {
    spdlog::error("{}", learner.status().message());
    return 2;
  }
  auto& l = *learner.value();
  const auto idx = FirstShuffled(train.size(), 0, opt.seed);
  spdlog::info("pretraining {} on classes {} ({} training, {} test samples), {} epochs, {:.1f} MFLOPs forward per sample",
               opt.model, opt.classes.empty() ? "0-4" : opt.classes, train.size(), test.size(), opt.epochs,
               l.ForwardFlops() / 1e6);
  const std::string log_path = opt.out + ".csv";
  std::string log = "epoch,train_loss,test_accuracy,test_loss,train_s\n";
  Progress progress("transfer pretrain", opt.epochs, "epochs");
  for (int e = 1; e <= opt.epochs; ++e) {
    auto epoch = TrainAndTest(l, train, idx, Options(opt, e, &progress, e - 1), test);
    if (!epoch.ok()) {
      spdlog::error("{}", epoch.status().message());
      return 1;
    }
    const auto& [ts, es] = epoch.value();
    spdlog::info("epoch {}/{}: train loss {:.4f}, test accuracy {:.4f} ({:.0f} s)", e, opt.epochs, ts.mean_loss,
                 es.accuracy, ts.seconds);
    log += fmt::format("{},{},{},{},{}\n", e, ts.mean_loss, es.accuracy, es.loss, ts.seconds);
    if (Status w = WriteFileAtomic(log_path, log); !w.ok()) {
      spdlog::error("{}", w.message());
      return 1;
    }
  }
  progress.Finish(opt.epochs);
  Status st = l.SaveBackbone(opt.out);
  if (!st.ok()) {
    spdlog::error("{}", st.message());
    return 1;
  }
  spdlog::info("saved backbone {} (training log {})", opt.out, log_path);
  return 0;
}

int RunTransferCompare(const TransferToolOptions& opt) {
  SetTorchThreads(opt.threads);
  InstallCountingAllocator();
  auto data = LoadClasses(opt.classes.empty() ? "5-9" : opt.classes);
  if (!data.ok()) {
    spdlog::error("{}", data.status().message());
    return 2;
  }
  const auto& [train, test] = data.value();
  const auto idx = FirstShuffled(train.size(), opt.train_limit, opt.seed);
  const std::string out_dir = opt.out.empty() ? "runs/transfer-compare" : opt.out;
  std::filesystem::create_directories(out_dir);
  std::ostringstream csv;
  csv << "mode,blocks,epoch,test_accuracy,test_loss,train_loss,train_s,peak_train_kb,backward_kb,backward_kb_analytic,"
         "train_mflops_per_sample,update_kb,full_model_kb\n";
  json results = json::array();
  size_t n_modes = 0;
  for (char c : opt.modes + ",") n_modes += c == ',';
  Progress progress("transfer compare", static_cast<double>(n_modes * opt.epochs), "epochs");
  double epochs_done = 0;
  std::stringstream ms(opt.modes);
  for (std::string mode; std::getline(ms, mode, ',');) {
    ModelSpec spec;
    spec.name = opt.model;
    spec.num_classes = train.num_classes;
    spec.transfer.backbone = opt.backbone;
    spec.transfer.mode = mode;
    spec.transfer.blocks = opt.blocks;
    spec.transfer.batch_size = opt.batch;
    spec.transfer.momentum = opt.momentum > 0;
    auto learner = Learner::Create(spec, opt.seed);
    if (!learner.ok()) {
      spdlog::error("{}", learner.status().message());
      return 2;
    }
    auto& l = *learner.value();
    const int k = l.TrainableBlocks();
    const double analytic_kb = KeptForBackwardAnalytic(mode, k, opt.batch, spec.num_classes) / 1024.0;
    const double update_kb = l.GetParams().bytes() / 1024.0, full_kb = l.FullModelBytes() / 1024.0;
    spdlog::info("{}: top {} blocks train; {:.1f} MFLOPs per training sample; update {:.1f} KB of {:.1f} KB", mode, k,
                 l.TrainFlops() / 1e6, update_kb, full_kb);
    json row = {{"mode", mode}, {"blocks", k}, {"train_mflops_per_sample", l.TrainFlops() / 1e6},
                {"forward_mflops_per_sample", l.ForwardFlops() / 1e6}, {"update_kb", update_kb},
                {"full_model_kb", full_kb}, {"backward_kb_analytic", analytic_kb}, {"epochs", json::array()}};
    for (int e = 1; e <= opt.epochs; ++e) {
      auto epoch = TrainAndTest(l, train, idx, Options(opt, e, &progress, epochs_done), test);
      epochs_done += 1;
      if (!epoch.ok()) {
        spdlog::error("{}", epoch.status().message());
        return 1;
      }
      const auto& [ts, es] = epoch.value();
      spdlog::info("{} epoch {}/{}: test accuracy {:.4f}, train {:.1f} s, kept for backward {:.1f} KB, peak training "
                   "memory {:.1f} KB", mode, e, opt.epochs, es.accuracy, ts.seconds, ts.kept_for_backward_bytes / 1024.0,
                   ts.peak_train_bytes / 1024.0);
      csv << mode << ',' << k << ',' << e << ',' << es.accuracy << ',' << es.loss << ',' << ts.mean_loss << ','
          << ts.seconds << ',' << ts.peak_train_bytes / 1024.0 << ',' << ts.kept_for_backward_bytes / 1024.0 << ','
          << analytic_kb << ',' << l.TrainFlops() / 1e6
          << ',' << update_kb << ',' << full_kb << '\n';
      row["epochs"].push_back({{"epoch", e}, {"test_accuracy", es.accuracy}, {"train_s", ts.seconds},
                               {"peak_train_kb", ts.peak_train_bytes / 1024.0},
                               {"backward_kb", ts.kept_for_backward_bytes / 1024.0}});
    }
    results.push_back(row);
  }
  json summary = {{"backbone", opt.backbone}, {"classes", opt.classes.empty() ? "5-9" : opt.classes},
                  {"train_samples", idx.size()}, {"test_samples", test.size()}, {"batch", opt.batch},
                  {"learning_rate", opt.learning_rate}, {"momentum", opt.momentum}, {"modes", results}};
  progress.Finish(epochs_done);
  for (Status w : {WriteFileAtomic(out_dir + "/results.csv", csv.str()), WriteFileAtomic(out_dir + "/results.json", summary.dump(2) + "\n")})
    if (!w.ok()) {
      spdlog::error("{}", w.message());
      return 1;
    }
  std::cout << "mode      blocks  test_acc  train_s/epoch  peak_train_KB  backward_KB  (analytic)  train_MFLOPs/sample  update_KB\n";
  for (const auto& r : results) {
    const auto& last = r["epochs"].back();
    double t = 0;
    for (const auto& e : r["epochs"]) t += e["train_s"].get<double>();
    std::printf("%-9s %6d  %8.4f  %13.1f  %13.1f  %11.1f  %10.1f  %19.2f  %9.1f\n", r["mode"].get<std::string>().c_str(),
                r["blocks"].get<int>(), last["test_accuracy"].get<double>(), t / r["epochs"].size(),
                last["peak_train_kb"].get<double>(), last["backward_kb"].get<double>(), r["backward_kb_analytic"].get<double>(),
                r["train_mflops_per_sample"].get<double>(), r["update_kb"].get<double>());
  }
  spdlog::info("wrote {}/results.csv and results.json", out_dir);
  return 0;
}

int RunMobileTlBench(int batch) {
  json out;
  auto row = [&](const std::string& name, const IrbShape& b, int n, const std::string& act) {
    auto std_m = MeasureRetainedBytes(b, TrainRule::kStandard, act, n, 1);
    auto mtl_m = MeasureRetainedBytes(b, TrainRule::kMobileTl, act, n, 1);
    if (!std_m.ok() || !mtl_m.ok()) return false;
    const int64_t std_a = RetainedBytesAnalytic(b, TrainRule::kStandard, n);
    const int64_t mtl_a = RetainedBytesAnalytic(b, TrainRule::kMobileTl, n);
    const double reduction = 1.0 - static_cast<double>(mtl_m.value()) / static_cast<double>(std_m.value());
    std::printf("%-22s %-9s %4d->%-4d x%-3d %2dx%-2d s%d b%-3d  %12.3f %12.3f %12.3f %12.3f  %6.1f%%\n", name.c_str(),
                act.c_str(), b.in, b.out, b.hidden / b.in, b.in_hw, b.in_hw, b.stride, n, std_m.value() / 1e6, std_a / 1e6,
                mtl_m.value() / 1e6, mtl_a / 1e6, 100 * reduction);
    out[name + "/" + act] = {{"standard_measured_bytes", std_m.value()}, {"standard_analytic_bytes", std_a},
                             {"mobiletl_measured_bytes", mtl_m.value()}, {"mobiletl_analytic_bytes", mtl_a},
                             {"reduction", reduction}};
    return true;
  };
  std::printf("bytes kept for backward per IRB beyond its input, MB (10^6 B): measured (counting allocator) and analytic\n");
  std::printf("%-22s %-9s %-10s %-5s %-8s %-5s  %12s %12s %12s %12s  %7s\n", "block", "act", "channels", "t", "input", "batch",
              "std meas", "std analytic", "mtl meas", "mtl analytic", "saved");
  bool ok = row("ml.md reference", IrbShape{16, 16, 96, 1, 32}, 8, "relu6");
  const auto& blocks = IrbNetBlocks();
  for (const std::string act : {"relu6", "hardswish"})
    for (size_t i = 0; i < blocks.size(); ++i) ok = row("irbnet block " + std::to_string(i), blocks[i], batch, act) && ok;
  int64_t s = 0, m = 0;
  for (const auto& b : blocks) {
    s += RetainedBytesAnalytic(b, TrainRule::kStandard, batch);
    m += RetainedBytesAnalytic(b, TrainRule::kMobileTl, batch);
  }
  std::printf("irbnet, all 6 blocks, batch %d: standard %.3f MB, MobileTL %.3f MB: %.1f%% less\n", batch, s / 1e6, m / 1e6,
              100.0 * (1.0 - static_cast<double>(m) / s));
  out["irbnet_all_blocks"] = {{"batch", batch}, {"standard_bytes", s}, {"mobiletl_bytes", m}};
  std::cout << out.dump(2) << std::endl;
  return ok ? 0 : 1;
}

}  // namespace edgebed
