// MobileTL: the custom autograd functions against their definitions and libtorch's own layers, what
// IRBs keep for backward (measured = analytic, the reference figures), TorchScript import, the
// transfer learner and the memory budget. Includes libtorch (the gradient checks need tensors).
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "splitnets/learner.h"
#include "splitnets/mobiletl_ops.h"
#include "splitnets/transfer.h"

#undef CHECK  // libtorch's glog redefines CHECK (an abort); the tests mean doctest's
#define CHECK DOCTEST_CHECK

using namespace edgebed;
using namespace edgebed::mobiletl;

namespace {

const std::string kTorchScript = std::string(EDGEBED_SOURCE_DIR) + "/tests/splitnets/data/irbnet_torchscript.pt";

// Values around the activation's kinks, exact kinks included, and a length that is not a multiple of 8.
torch::Tensor KinkyInput() {
  torch::manual_seed(3);
  auto x = torch::randn({3, 5, 7, 9}) * 4.0 + 1.0;
  auto flat = x.view(-1);
  const float kinks[] = {0.0f, 6.0f, -3.0f, 3.0f, 1e-7f, -1e-7f, 5.9999995f, 6.0000005f};
  for (int i = 0; i < 8; ++i) flat[i * 50] = kinks[i];
  return x;
}

torch::Tensor GradOf(const torch::Tensor& y, const torch::Tensor& x, const torch::Tensor& upstream) {
  return torch::autograd::grad({y}, {x}, {upstream})[0];
}

const Dataset& Small() {
  static Dataset d = [] {
    auto r = LoadFashionMnist(DefaultFashionMnistDir(), true, 3000);
    REQUIRE(r.ok());
    return SelectClasses(r.value(), {5, 6, 7, 8, 9});
  }();
  return d;
}

std::vector<uint32_t> FirstN(uint32_t n) {
  std::vector<uint32_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0u);
  return idx;
}

TrainOptions Sgd(int epochs, uint64_t seed) {
  TrainOptions opt;
  opt.epochs = epochs;
  opt.learning_rate = 0.05f;
  opt.momentum = 0.9f;
  opt.seed = seed;
  return opt;
}

}  // namespace

TEST_CASE("the 1-bit mask is bit-packed: ceil(n / 8) bytes, one bit per element") {
  auto x = KinkyInput();
  const int64_t n = x.numel();
  auto packed = PackMask(x, kRelu6);
  CHECK(packed.numel() == (n + 7) / 8);
  CHECK((packed.scalar_type() == torch::kUInt8));
  int64_t bits = 0;
  for (int64_t i = 0; i < packed.numel(); ++i) bits += __builtin_popcount(packed[i].item<uint8_t>());
  CHECK(bits == ((x > 0) & (x < 6)).sum().item<int64_t>());
}

TEST_CASE("ReLU6: the mask backward equals libtorch's exact backward, bit for bit") {
  auto x = KinkyInput().requires_grad_(true);
  auto g = torch::randn(x.sizes());
  auto exact = GradOf(torch::hardtanh(x, 0.0, 6.0), x, g);
  auto masked_y = MaskedActivation::apply(x, kRelu6);
  CHECK(torch::equal(masked_y, torch::hardtanh(x, 0.0, 6.0)));
  CHECK(torch::equal(GradOf(masked_y, x, g), exact));
}

TEST_CASE("Hard-Swish: the sign-approximated backward is exactly grad * 1[x > 0]") {
  auto x = KinkyInput().requires_grad_(true);
  auto g = torch::randn(x.sizes());
  auto y = MaskedActivation::apply(x, kHardSwish);
  CHECK(torch::equal(y, torch::hardswish(x)));
  auto expected = torch::where(x.detach() > 0, g, torch::zeros_like(g));
  CHECK(torch::equal(GradOf(y, x, g), expected));
  // and it is an approximation: the exact derivative differs on (-3, 3)
  CHECK_FALSE(torch::allclose(GradOf(torch::hardswish(x), x, g), expected));
}

TEST_CASE("shift-only BN: the shift's gradient is the built-in BN's with a frozen scale; only a is kept") {
  torch::manual_seed(5);
  torch::nn::BatchNorm2d bn(6);
  {
    torch::NoGradGuard ng;
    bn->running_mean.normal_(0.0, 0.5);
    bn->running_var.uniform_(0.5, 2.0);
    bn->weight.uniform_(0.5, 1.5);
    bn->bias.normal_();
  }
  bn->eval();  // frozen statistics
  bn->weight.set_requires_grad(false);
  auto x = torch::randn({4, 6, 5, 5}).requires_grad_(true);
  auto g = torch::randn({4, 6, 5, 5});

  auto y_ref = bn->forward(x);
  auto ref = torch::autograd::grad({y_ref}, {x, bn->bias}, {g});
  auto y = ShiftOnlyBatchNorm::apply(x, bn->bias, bn->weight, bn->running_mean, bn->running_var, bn->options.eps());
  auto got = torch::autograd::grad({y}, {x, bn->bias}, {g});
  CHECK(torch::allclose(y, y_ref, 1e-5, 1e-6));
  CHECK(torch::allclose(got[1], ref[1], 1e-5, 1e-5));  // the shift
  CHECK(torch::allclose(got[0], ref[0], 1e-5, 1e-6));  // what flows down
  CHECK(torch::allclose(got[1], g.sum({0, 2, 3}), 1e-5, 1e-5));

  InstallCountingAllocator();
  auto x2 = torch::randn({4, 6, 5, 5}).requires_grad_(true);
  const int64_t before = CountedLiveBytes();
  auto y2 = ShiftOnlyBatchNorm::apply(x2, bn->bias, bn->weight, bn->running_mean, bn->running_var, 1e-5);
  auto fn = y2.grad_fn();
  y2 = torch::Tensor();
  CHECK(CountedLiveBytes() - before == 6 * 4);  // a: one float per channel, nothing of x
}

TEST_CASE("bytes kept for backward per IRB: measured equals the analytic count; the ml.md reference figures") {
  for (const std::string act : {"relu6", "hardswish"})
    for (const auto& b : IrbNetBlocks())
      for (auto rule : {TrainRule::kStandard, TrainRule::kMobileTl}) {
        auto m = MeasureRetainedBytes(b, rule, act, 8, 1);
        REQUIRE(m.ok());
        CHECK(m.value() == RetainedBytesAnalytic(b, rule, 8));
      }
  // ml.md: 16 channels, expansion 6, 32x32, batch 8: 19.40 MB standard, 7.01 MB MobileTL (measured there)
  const IrbShape ref{16, 16, 96, 1, 32};
  const auto standard = MeasureRetainedBytes(ref, TrainRule::kStandard, "relu6", 8, 2).value();
  const auto mtl = MeasureRetainedBytes(ref, TrainRule::kMobileTl, "relu6", 8, 2).value();
  CHECK(std::round(standard / 1e4) / 100 == doctest::Approx(19.40));
  CHECK(std::round(mtl / 1e4) / 100 == doctest::Approx(7.01));
  CHECK(1.0 - static_cast<double>(mtl) / standard >= 0.46);  // the paper's MobileNetV2 reduction
  CHECK_FALSE(MeasureRetainedBytes(ref, TrainRule::kStandard, "gelu", 8, 2).ok());
}

TEST_CASE("a backbone exported by PyTorch 1.13 as TorchScript loads by name and computes the same features") {
  std::ifstream in(kTorchScript + ".json");
  REQUIRE(in);
  nlohmann::json expected;
  in >> expected;
  Features f(kRelu6);
  REQUIRE(LoadBackbone(f, kTorchScript).ok());
  f->eval();
  std::vector<float> xs(2 * 28 * 28);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<float>(std::sin(static_cast<double>(i) * 0.37));
  torch::NoGradGuard ng;
  auto y = f->forward(torch::from_blob(xs.data(), {2, 1, 28, 28}).clone());
  REQUIRE((y.sizes().vec() == std::vector<int64_t>{2, 64, 7, 7}));
  auto pooled = y.mean({2, 3}).flatten();
  const auto want = expected["pooled"].get<std::vector<float>>();
  REQUIRE(want.size() == static_cast<size_t>(pooled.numel()));
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::abs(double(pooled[i].item<float>()) - want[i]));
  CHECK(worst < 1e-4);
  CHECK(y.sum().item<double>() == doctest::Approx(expected["sum"].get<double>()).epsilon(1e-4));
  // the frozen path (BN folded, activations in place) computes what the eval-mode layers do
  auto h = f->stem->ForwardFrozen(torch::from_blob(xs.data(), {2, 1, 28, 28}).clone());
  for (auto& b : f->blocks) h = b->ForwardFrozen(h);
  CHECK(torch::allclose(h, y, 1e-4, 1e-5));

  Features g(kRelu6);
  auto missing = LoadBackbone(g, "/nonexistent/backbone.pt");
  CHECK(missing.message().find("cannot read backbone /nonexistent/backbone.pt") != std::string::npos);
  auto wrong = LoadBackbone(g, std::string(EDGEBED_SOURCE_DIR) + "/codecs/decoders/amp_da_net.pt");
  CHECK(wrong.message().find("has no tensor 'stem.conv.weight'") != std::string::npos);
}

TEST_CASE("a MobileTL learner exchanges and trains only the top blocks and the head; the bottom stays frozen") {
  SetTorchThreads(1);
  ModelSpec spec;
  spec.name = "irbnet";
  spec.num_classes = 5;
  spec.transfer.backbone = kTorchScript;
  spec.transfer.mode = "mobiletl";
  spec.transfer.blocks = 2;
  auto l = Learner::Create(spec, 7);
  REQUIRE(l.ok());
  auto& learner = *l.value();
  CHECK(learner.TrainableBlocks() == 2);
  std::vector<std::string> names;
  for (const auto& s : learner.specs()) names.push_back(s.name);
  // per block: 3 conv weights, bn1/bn2 shifts, bn3 scale + shift, bn3 running statistics; then the head
  const std::vector<std::string> block4 = {
      "features.blocks.4.expand.weight", "features.blocks.4.bn1.bias", "features.blocks.4.depthwise.weight",
      "features.blocks.4.bn2.bias", "features.blocks.4.project.weight", "features.blocks.4.bn3.weight",
      "features.blocks.4.bn3.bias"};
  for (const auto& n : block4) CHECK(std::find(names.begin(), names.end(), n) != names.end());
  for (const auto& n : names) {
    CHECK(n.find("blocks.3.") == std::string::npos);  // below the top 2: not exchanged
    CHECK(n.find("bn1.weight") == std::string::npos);  // frozen scales
    CHECK(n.find("bn1.running") == std::string::npos);
  }
  CHECK(std::find(names.begin(), names.end(), "head.weight") != names.end());
  CHECK(learner.GetParams().bytes() < learner.FullModelBytes() / 1.5);

  ModelSpec probe = spec;
  probe.transfer.mode = "full";
  auto full = Learner::Create(probe, 7).value();
  const ParamSet before = learner.GetParams();
  const auto idx = FirstN(600);
  const TrainOptions opt = Sgd(1, 3);
  InstallCountingAllocator();
  const EvalStats e0 = learner.Evaluate(Small(), &idx).value();
  const TrainStats ts = learner.Train(Small(), idx, opt).value();
  const EvalStats e1 = learner.Evaluate(Small(), &idx).value();
  CHECK(e1.loss < e0.loss);
  CHECK(ts.peak_train_bytes > 0);
  // what the whole learner keeps for backward, measured at each batch's backward, is the analytic count
  CHECK(ts.kept_for_backward_bytes == KeptForBackwardAnalytic("mobiletl", 2, 32, 5));
  const ParamSet after = learner.GetParams();
  size_t off = 0;
  for (const auto& s : after.specs) {
    const size_t n = static_cast<size_t>(s.numel());
    const bool moved = !std::equal(after.flat.begin() + off, after.flat.begin() + off + n, before.flat.begin() + off);
    CHECK_MESSAGE(moved, s.name);  // every exchanged tensor trains (or tracks statistics)
    off += n;
  }
  // the frozen part did not move: a fresh learner from the same file predicts identically after taking
  // the trained tensors
  auto fresh = Learner::Create(spec, 99).value();
  REQUIRE(fresh->SetParams(after).ok());
  const EvalStats ef = fresh->Evaluate(Small(), &idx).value();
  CHECK(ef.loss == doctest::Approx(e1.loss).epsilon(1e-6));
  CHECK(full->TrainableBlocks() == 2);
  CHECK(full->GetParams().numel() > learner.GetParams().numel());  // full also trains the inner BN scales
  const TrainStats fs = full->Train(Small(), idx, opt).value();
  CHECK(fs.kept_for_backward_bytes == KeptForBackwardAnalytic("full", 2, 32, 5));
  CHECK(static_cast<double>(ts.kept_for_backward_bytes) < 0.5 * static_cast<double>(fs.kept_for_backward_bytes));

  ModelSpec linear = spec;
  linear.transfer.mode = "linear";
  auto lin = Learner::Create(linear, 7).value();
  CHECK(lin->TrainableBlocks() == 0);
  CHECK(lin->GetParams().numel() == 64 * 5 + 5);
  CHECK(lin->TrainFlops() < learner.TrainFlops());
  CHECK(lin->Train(Small(), idx, opt).value().kept_for_backward_bytes == KeptForBackwardAnalytic("linear", 0, 32, 5));
}

TEST_CASE("the memory budget picks the most top blocks that fit; too small names the budget and the minimum") {
  TransferConfig t;
  t.backbone = kTorchScript;
  t.mode = "mobiletl";
  t.blocks = 4;
  t.batch_size = 32;
  const int64_t one = TrainingBytesAnalytic("mobiletl", 1, 32, 5, false);
  const int64_t three = TrainingBytesAnalytic("mobiletl", 3, 32, 5, false);
  CHECK(one < three);
  t.memory_budget_kb = three / 1024.0 + 0.5;
  CHECK(BlocksWithinBudget(t, 5).value() == 3);
  t.memory_budget_kb = one / 1024.0;
  CHECK(BlocksWithinBudget(t, 5).value() == 1);
  t.memory_budget_kb = 0;
  CHECK(BlocksWithinBudget(t, 5).value() == 4);  // no limit: as many as asked
  t.memory_budget_kb = 100;
  auto err = BlocksWithinBudget(t, 5);
  REQUIRE_FALSE(err.ok());
  CHECK(err.status().message().find("transfer.memory_budget_kb = 100 KB") != std::string::npos);
  char least[32];
  std::snprintf(least, sizeof least, "is below %.1f KB", one / 1024.0);
  CHECK(err.status().message().find(least) != std::string::npos);
  // the same budget gives full fine-tuning fewer blocks: it keeps more for backward
  t.memory_budget_kb = three / 1024.0 + 0.5;
  t.mode = "full";
  CHECK(BlocksWithinBudget(t, 5).value() < 3);
  // and the learner obeys it
  ModelSpec spec;
  spec.name = "irbnet";
  spec.num_classes = 5;
  spec.transfer = t;
  spec.transfer.mode = "mobiletl";
  spec.transfer.memory_budget_kb = one / 1024.0 + 1.0;
  CHECK(Learner::Create(spec, 1).value()->TrainableBlocks() == 1);
}

TEST_CASE("pretraining from scratch lowers the loss; its saved backbone is what transfer loads") {
  SetTorchThreads(1);
  ModelSpec spec;
  spec.name = "irbnet_hs";
  spec.num_classes = 5;
  auto a = Learner::Create(spec, 4).value();
  const auto idx = FirstN(500);
  const TrainOptions opt = Sgd(2, 0);
  const EvalStats e0 = a->Evaluate(Small(), &idx).value();
  REQUIRE(a->Train(Small(), idx, opt).ok());
  const EvalStats e1 = a->Evaluate(Small(), &idx).value();
  CHECK(e1.loss < e0.loss);
  CHECK(e1.accuracy > e0.accuracy + 0.2);
  const std::string path =
      (std::filesystem::temp_directory_path() / ("pretrained_backbone_test-" + std::to_string(getpid()) + ".pt")).string();
  REQUIRE(a->SaveBackbone(path).ok());
  spec.transfer.backbone = path;
  spec.transfer.mode = "full";
  spec.transfer.blocks = 1;
  auto b = Learner::Create(spec, 5).value();
  const ParamSet pa = a->GetParams(), pb = b->GetParams();
  size_t matched = 0;
  for (size_t j = 0; j < pb.specs.size(); ++j) {
    if (pb.specs[j].name.rfind("features.", 0) != 0) continue;
    size_t oa = 0, ob = 0;
    for (size_t i = 0; i < j; ++i) ob += static_cast<size_t>(pb.specs[i].numel());
    size_t i = 0;
    for (; i < pa.specs.size() && pa.specs[i].name != pb.specs[j].name; ++i) oa += static_cast<size_t>(pa.specs[i].numel());
    REQUIRE(i < pa.specs.size());
    CHECK(std::equal(pb.flat.begin() + ob, pb.flat.begin() + ob + pb.specs[j].numel(), pa.flat.begin() + oa));
    ++matched;
  }
  CHECK(matched == 15);  // block 5: 3 convs, 3 BNs x (scale, shift, mean, variance)
  CHECK(Learner::Create("cnn", 1).value()->SaveBackbone(path).message().find("no backbone") != std::string::npos);
  std::filesystem::remove(path);
}
