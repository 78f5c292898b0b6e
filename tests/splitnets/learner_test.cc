#include <doctest/doctest.h>

#include <cmath>
#include <numeric>

#include "splitnets/learner.h"

using namespace edgebed;

namespace {
const Dataset& Train() {
  static Dataset d = [] {
    auto r = LoadFashionMnist(DefaultFashionMnistDir(), true, 3000);
    REQUIRE(r.ok());
    return std::move(r.value());
  }();
  return d;
}
std::vector<uint32_t> Range(uint32_t lo, uint32_t hi) {
  std::vector<uint32_t> v(hi - lo);
  std::iota(v.begin(), v.end(), lo);
  return v;
}
}  // namespace

TEST_CASE("Fashion-MNIST loads from Debian's idx.gz files") {
  auto test = LoadFashionMnist(DefaultFashionMnistDir(), false);
  REQUIRE(test.ok());
  CHECK(test->size() == 10000);
  CHECK(test->rows == 28);
  CHECK(test->cols == 28);
  CHECK(test->images.size() == 10000u * 784u);
  std::vector<int> count(10, 0);
  for (uint8_t y : test->labels) ++count[y];
  for (int c : count) CHECK(c == 1000);  // the test set is balanced
  CHECK(Train().size() == 3000);
}

TEST_CASE("a missing data folder is an error naming the file") {
  auto r = LoadFashionMnist("/nonexistent", true);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("/nonexistent/train-images-idx3-ubyte.gz") != std::string::npos);
}

TEST_CASE("models are built by name; unknown names list the known ones") {
  auto cnn = Learner::Create("cnn", 1);
  REQUIRE(cnn.ok());
  CHECK(cnn.value()->GetParams().numel() == 16 * 9 + 16 + 32 * 16 * 9 + 32 + 1568 * 64 + 64 + 64 * 10 + 10);
  auto bad = Learner::Create("resnet", 1);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("known: cnn, mlp, logreg") != std::string::npos);
}

TEST_CASE("parameters go out and back in unchanged; a wrong layout is refused") {
  auto a = Learner::Create("mlp", 1).value();
  auto b = Learner::Create("mlp", 2).value();
  CHECK(a->GetParams().flat != b->GetParams().flat);  // different seeds, different weights
  REQUIRE(b->SetParams(a->GetParams()).ok());
  CHECK(b->GetParams().flat == a->GetParams().flat);
  ParamSet wrong = a->GetParams();
  wrong.specs[0].shape = {64, 784};
  CHECK(b->SetParams(wrong).message().find("expected [128, 784]") != std::string::npos);
}

TEST_CASE("local training lowers the loss and raises accuracy, the same way for the same seed") {
  SetTorchThreads(1);
  auto a = Learner::Create("cnn", 3).value();
  const auto held_out = Range(2000, 3000);
  const EvalStats before = a->Evaluate(Train(), &held_out).value();
  TrainOptions opt;
  opt.epochs = 1;
  opt.batch_size = 32;
  opt.learning_rate = 0.05f;
  opt.momentum = 0.5f;
  opt.seed = 9;
  int calls = 0;
  opt.on_progress = [&](float) { return ++calls > 0; };
  const TrainStats ts = a->Train(Train(), Range(0, 2000), opt).value();
  const EvalStats after = a->Evaluate(Train(), &held_out).value();
  CHECK(ts.samples == 2000);
  CHECK(calls == 63);  // ceil(2000 / 32) batches
  CHECK(after.loss < before.loss);
  CHECK(after.accuracy > before.accuracy + 0.3);

  auto b = Learner::Create("cnn", 3).value();
  REQUIRE(b->Train(Train(), Range(0, 2000), opt).ok());
  CHECK(b->GetParams().flat == a->GetParams().flat);  // bit-identical with one thread and one seed
}

TEST_CASE("FedProx's proximal term holds the weights near where training began") {
  // Plain SGD with mu = 1 / learning_rate: w <- w - lr (g + mu (w - w0)) = w0 - lr g, so after any
  // number of batches the weights are one gradient step from w0 (the drift does not grow with the
  // batches), while without the term they drift by the sum of the steps.
  SetTorchThreads(1);
  auto drift = [&](float mu, uint32_t samples) {
    auto l = Learner::Create("logreg", 5).value();
    const ParamSet w0 = l->GetParams();
    TrainOptions opt;
    opt.batch_size = 32;
    opt.learning_rate = 0.05f;
    opt.proximal_mu = mu;
    opt.seed = 3;
    REQUIRE(l->Train(Train(), Range(0, samples), opt).ok());
    const ParamSet w = l->GetParams();
    double s = 0.0;
    for (size_t i = 0; i < w.flat.size(); ++i) s += (w.flat[i] - w0.flat[i]) * (w.flat[i] - w0.flat[i]);
    return std::sqrt(s);
  };
  const double plain = drift(0.0f, 960), prox = drift(1.0f / 0.05f, 960), half = drift(0.5f / 0.05f, 960);
  const double prox_long = drift(1.0f / 0.05f, 1920), plain_long = drift(0.0f, 1920);  // 60 batches
  INFO("drift over 30 batches: plain ", plain, ", mu = 1/lr ", prox, ", mu = 0.5/lr ", half, "; over 60: plain ",
       plain_long, ", mu = 1/lr ", prox_long);
  CHECK(prox < plain / 2.0);
  CHECK(half < plain);
  CHECK(prox_long < 1.5 * prox);  // one step from w0, however long it trains
  CHECK(plain_long > 1.2 * plain);
}
