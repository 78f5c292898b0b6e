#include "tools/split.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "codecs/rng.h"
#include "splitnets/learner.h"
#include "record/progress.h"
#include "splitnets/split_training.h"
#include "splitnets/transfer.h"

namespace edgebed {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); }

// Median encoder time [ms] for `batch` images at `width` (inference, after a warm-up).
double EncoderMs(SlimEncoder& enc, double width, size_t batch, int reps) {
  const std::vector<float> x(batch * 784, 0.1f);
  return EncodeMedianMs(enc, width, x.data(), batch, reps, /*warmup=*/3);
}

}  // namespace

int RunSplitCompare(const SplitToolOptions& opt) {
  SetTorchThreads(opt.threads);
  auto train = LoadFashionMnist(DefaultFashionMnistDir(), true, opt.train_limit);
  auto test = LoadFashionMnist(DefaultFashionMnistDir(), false, opt.test_limit);
  if (!train.ok() || !test.ok()) {
    spdlog::error("{}", (train.ok() ? test.status() : train.status()).message());
    return 2;
  }
  std::vector<uint32_t> idx(train->size());
  std::iota(idx.begin(), idx.end(), 0u);
  std::filesystem::create_directories(opt.out);
  const SgdConfig sgd{static_cast<float>(opt.learning_rate), static_cast<float>(opt.momentum)};

  struct Variant {
    std::string name;
    SlimConfig cfg;
    bool quantise;
  };
  SlimConfig full_only;
  full_only.widths = {1.0};
  const std::vector<Variant> variants = {{"slimmable split, 8-bit bottleneck", SlimConfig{}, true},
                                         {"unsplit, unquantised, width 1.0", full_only, false}};
  json results = json::array();
  std::ofstream csv(opt.out + "/results.csv");
  csv << "network,width,accuracy,test_loss,bytes_per_sample,encoder_mflops,decoder_mflops,encoder_ms_1,encoder_ms_32,"
         "train_s_per_epoch\n";
  Progress progress("split compare", static_cast<double>(variants.size()) * opt.epochs, "epochs");
  double epochs_done = 0;
  for (const auto& v : variants) {
    auto enc = SlimEncoder::Create(v.cfg, opt.seed, sgd);
    auto dec = SlimDecoder::Create(v.cfg, opt.seed, sgd);
    if (!enc.ok() || !dec.ok()) {
      spdlog::error("{}", (enc.ok() ? dec.status() : enc.status()).message());
      return 2;
    }
    double seconds = 0.0;
    for (int e = 1; e <= opt.epochs; ++e) {
      // Cosine step-size schedule over the epochs, the same for both networks.
      const float lr = static_cast<float>(0.5 * opt.learning_rate * (1.0 + std::cos(M_PI * (e - 1) / opt.epochs)));
      enc.value()->SetLearningRate(lr);
      dec.value()->SetLearningRate(lr);
      SplitTrainOptions t;
      t.batch_size = opt.batch;
      t.seed = DeriveSeed(opt.seed, "epoch", static_cast<uint64_t>(e));
      t.sandwich_random = opt.sandwich_random;
      t.quantise = v.quantise;
      const double before = epochs_done;
      t.on_progress = [&progress, before](float f) {
        progress.Update(before + f);
        return true;
      };
      const auto st = TrainSplitLocal(*enc.value(), *dec.value(), train.value(), idx, t);
      epochs_done += 1;
      seconds += st.seconds;
      const auto ev = EvaluateSplit(*enc.value(), *dec.value(), test.value(), v.cfg.widths.back(), v.quantise);
      spdlog::info("{}: epoch {} train loss {:.4f}, widest test accuracy {:.2f}% ({:.1f} s)", v.name, e, st.mean_loss,
                   100 * ev.accuracy, st.seconds);
    }
    for (double w : v.cfg.widths) {
      const auto ev = EvaluateSplit(*enc.value(), *dec.value(), test.value(), w, v.quantise);
      const double ms1 = EncoderMs(*enc.value(), w, 1, 200), ms32 = EncoderMs(*enc.value(), w, 32, 50);
      const uint64_t bytes = v.quantise ? BottleneckBytesPerSample(v.cfg, w) : BottleneckBytesPerSample(v.cfg, w) * 4;
      json r = {{"network", v.name},
                {"width", w},
                {"accuracy", ev.accuracy},
                {"test_loss", ev.loss},
                {"bytes_per_sample", bytes},
                {"encoder_mflops", EncoderFlops(v.cfg, w) / 1e6},
                {"decoder_mflops", DecoderFlops(v.cfg, w) / 1e6},
                {"encoder_ms_1", ms1},
                {"encoder_ms_32", ms32},
                {"train_s_per_epoch", seconds / opt.epochs}};
      results.push_back(r);
      csv << '"' << v.name << "\"," << w << ',' << ev.accuracy << ',' << ev.loss << ',' << bytes << ','
          << EncoderFlops(v.cfg, w) / 1e6 << ',' << DecoderFlops(v.cfg, w) / 1e6 << ',' << ms1 << ',' << ms32 << ','
          << seconds / opt.epochs << '\n';
    }
  }
  std::ofstream(opt.out + "/results.json") << json{{"epochs", opt.epochs}, {"batch", opt.batch},
                                                  {"learning_rate", opt.learning_rate}, {"momentum", opt.momentum},
                                                  {"threads", opt.threads}, {"seed", opt.seed},
                                                  {"results", results}}.dump(2)
                                           << '\n';
  progress.Finish(epochs_done);
  std::printf("\n%-36s %6s %9s %8s %9s %10s %10s\n", "network", "width", "accuracy", "bytes", "enc MFLOP",
              "enc ms (1)", "enc ms (32)");
  for (const auto& r : results)
    std::printf("%-36s %6.3g %8.2f%% %8llu %9.2f %10.3f %10.3f\n", r["network"].get<std::string>().c_str(),
                r["width"].get<double>(), 100 * r["accuracy"].get<double>(),
                static_cast<unsigned long long>(r["bytes_per_sample"].get<uint64_t>()), r["encoder_mflops"].get<double>(),
                r["encoder_ms_1"].get<double>(), r["encoder_ms_32"].get<double>());
  std::printf("(raw image: 784 bytes; %d threads; results in %s/results.csv)\n", opt.threads, opt.out.c_str());
  return 0;
}

int RunSlimmableBench() {
  SetTorchThreads(2);
  InstallCountingAllocator();
  SlimConfig cfg;
  auto enc = SlimEncoder::Create(cfg, 1);
  if (!enc.ok()) return 2;
  SlimEncoder& e = *enc.value();
  const int64_t params = e.NumParameterValues();
  const auto data = e.ParameterData();
  // Switching: every pair of widths, many times; time per switch and bytes allocated meanwhile.
  constexpr int kSwitches = 100000;
  const int64_t live0 = CountedLiveBytes();
  ResetCountedPeak();
  const auto a = Clock::now();
  for (int i = 0; i < kSwitches; ++i) (void)e.SetWidth(cfg.widths[static_cast<size_t>(i) % cfg.widths.size()]);
  const double switch_us = Ms(a, Clock::now()) * 1000.0 / kSwitches;
  const int64_t grown = CountedPeakBytes() - live0;
  const bool same = e.NumParameterValues() == params && e.ParameterData() == data;
  // Per width: the bottleneck, the encoder's cost and time (1 and 32 images), the switch itself and
  // the first encode after it, against rebuilding a separate network of that width and copying its
  // weights in from memory (what a device without a slimmable network does at best; reading a file
  // would add to it).
  std::vector<float> x(784, 0.1f), act;
  std::printf("%-6s %8s %10s %12s %13s %12s %14s %13s\n", "width", "bytes", "enc MFLOP", "enc ms (1)", "enc ms (32)",
              "switch [us]", "1st enc [ms]", "rebuild [ms]");
  for (double w : cfg.widths) {
    SlimConfig one;
    one.widths = {w};
    auto narrow = SlimEncoder::Create(one, 1);
    const double ms1 = EncoderMs(e, w, 1, 300), ms32 = EncoderMs(e, w, 32, 100);
    std::vector<double> sw, first, rebuild;  // medians of 21: a single shot catches the OS's hiccups
    for (int rep = 0; rep < 21; ++rep) {
      (void)e.SetWidth(cfg.widths.front() == w ? cfg.widths.back() : cfg.widths.front());
      (void)e.Encode(x.data(), 1, false, &act);
      const auto s0 = Clock::now();
      (void)e.SetWidth(w);
      const auto s1 = Clock::now();
      (void)e.Encode(x.data(), 1, false, &act);
      const auto s2 = Clock::now();
      auto fresh = SlimEncoder::Create(one, 2);
      ParamSet p = narrow.value()->GetParams();
      (void)fresh.value()->SetParams(p);
      (void)fresh.value()->Encode(x.data(), 1, false, &act);
      const auto s3 = Clock::now();
      sw.push_back(Ms(s0, s1) * 1000.0);
      first.push_back(Ms(s1, s2));
      rebuild.push_back(Ms(s2, s3));
    }
    std::printf("%-6.3g %8llu %10.2f %12.3f %13.3f %12.3f %14.3f %13.3f\n", w,
                static_cast<unsigned long long>(BottleneckBytesPerSample(cfg, w)), EncoderFlops(cfg, w) / 1e6, ms1, ms32,
                Median(sw), Median(first), Median(rebuild));
  }
  std::printf("\nswitching width: %.3f us per switch (mean of %d), %lld bytes allocated, parameters %s (%lld values)\n",
              switch_us, kSwitches, static_cast<long long>(grown), same ? "unchanged" : "CHANGED",
              static_cast<long long>(params));
  return same && grown == 0 && switch_us < 1000.0 ? 0 : 1;
}

}  // namespace edgebed
