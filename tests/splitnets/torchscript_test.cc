// Models from PyTorch: the TorchScript modules in tests/data/torchscript (made by the committed
// make_test_models.py with Debian's python3-torch) trained through the same Learner as the built-in
// networks.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <numeric>

#include "splitnets/learner.h"

using namespace edgebed;

namespace {

std::string Module(const std::string& name) { return std::string(EDGEBED_SOURCE_DIR) + "/tests/data/torchscript/" + name; }

std::unique_ptr<Learner> Load(const std::string& name, const std::string& loss = "auto", int classes = 10) {
  ModelSpec s;
  s.name = "torchscript";
  s.num_classes = classes;
  s.torchscript.path = Module(name);
  s.torchscript.loss = loss;
  auto l = Learner::Create(s, 1);
  REQUIRE_MESSAGE(l.ok(), l.status().message());
  return std::move(l.value());
}

const Dataset& Images() {
  static Dataset d = [] {
    auto r = LoadFashionMnist(DefaultFashionMnistDir(), true, 512);
    REQUIRE(r.ok());
    return std::move(r.value());
  }();
  return d;
}

std::vector<uint32_t> Range(uint32_t n) {
  std::vector<uint32_t> v(n);
  std::iota(v.begin(), v.end(), 0u);
  return v;
}

double MaxAbsDiff(const ParamSet& a, const ParamSet& b) {
  double m = 0.0;
  for (size_t i = 0; i < a.flat.size(); ++i) m = std::max(m, std::fabs(static_cast<double>(a.flat[i]) - b.flat[i]));
  return m;
}

}  // namespace

TEST_CASE("the TorchScript cnn with the built-in cnn's weights is the same network: same loss before and after a step") {
  SetTorchThreads(1);
  for (const char* optimizer : {"sgd", "adam"}) {
    CAPTURE(optimizer);
    auto cpp = Learner::Create("cnn", 3).value();
    auto ts = Load("cnn.pt");
    REQUIRE(ts->specs().size() == cpp->specs().size());
    for (size_t i = 0; i < ts->specs().size(); ++i) {  // same names, same shapes: the layout is the same
      CHECK(ts->specs()[i].name == cpp->specs()[i].name);
      CHECK(ts->specs()[i].shape == cpp->specs()[i].shape);
    }
    REQUIRE(ts->SetParams(cpp->GetParams()).ok());
    const auto eval_idx = Range(256);
    const double before_cpp = cpp->Evaluate(Images(), &eval_idx).value().loss;
    CHECK(ts->Evaluate(Images(), &eval_idx).value().loss == doctest::Approx(before_cpp).epsilon(1e-6));
    TrainOptions o;
    o.batch_size = 32;
    o.learning_rate = std::string(optimizer) == "adam" ? 0.001f : 0.05f;
    o.momentum = 0.5f;
    o.optimizer = optimizer;
    o.weight_decay = 1e-4f;
    o.seed = 9;
    const auto step = Range(32);  // one batch: one optimiser step
    const TrainStats a = cpp->Train(Images(), step, o).value();
    const TrainStats b = ts->Train(Images(), step, o).value();
    CHECK(b.mean_loss == doctest::Approx(a.mean_loss).epsilon(1e-6));
    // float32 sums in the same kernels: the weights agree to rounding, far below the step's size.
    CHECK(MaxAbsDiff(cpp->GetParams(), ts->GetParams()) < 1e-6);
    CHECK(MaxAbsDiff(cpp->GetParams(), ts->GetParams()) < 1e-3 * MaxAbsDiff(cpp->GetParams(), Learner::Create("cnn", 3).value()->GetParams()));
    const double after_cpp = cpp->Evaluate(Images(), &eval_idx).value().loss;
    CHECK(after_cpp < before_cpp);
    CHECK(ts->Evaluate(Images(), &eval_idx).value().loss == doctest::Approx(after_cpp).epsilon(1e-5));
  }
}

TEST_CASE("a TorchScript module's FLOPs are measured on one sample: the cnn's equal the built-in's count") {
  auto cpp = Learner::Create("cnn", 1).value();
  auto ts = Load("cnn.pt");
  CHECK(ts->ForwardFlops() == 0);  // nothing measured before the check
  REQUIRE(ts->Check(Images()).ok());
  // The analytic count (learner.cc): 2 x multiply-adds of the two convolutions and two linear layers.
  CHECK(ts->ForwardFlops() == cpp->ForwardFlops());
  CHECK(ts->TrainFlops() == 3 * ts->ForwardFlops());
  ModelSpec given;
  given.name = "torchscript";
  given.torchscript.path = Module("cnn.pt");
  given.torchscript.train_flops = 1.5e6;
  auto g = Learner::Create(given, 1).value();
  REQUIRE(g->Check(Images()).ok());
  CHECK(g->TrainFlops() == 1500000);  // the scenario's figure is kept
}

TEST_CASE("TorchScript modules that do not fit the data are refused before training, naming the file and the shapes") {
  auto wrong = Load("wrong_output.pt");
  Status st = wrong->Check(Images());
  CHECK(st.message().find("wrong_output.pt") != std::string::npos);
  CHECK(st.message().find("output has shape [8, 7]") != std::string::npos);
  CHECK(st.message().find("need [8, 10]") != std::string::npos);
  Dataset colour = Images().EmptyLike();  // 3x32x32 images where the module takes 1x28x28
  colour.shape = {3, 32, 32};
  colour.mean = {0.0f};
  colour.std = {1.0f};
  colour.images.assign(8 * 3 * 32 * 32, 7);
  colour.labels.assign(8, 1);
  st = Load("mlp.pt")->Check(colour);
  CHECK(st.message().find("forward fails on input x of shape [8, 3, 32, 32]") != std::string::npos);
  ModelSpec s;
  s.name = "torchscript";
  s.torchscript.path = Module("make_test_models.py");
  CHECK(Learner::Create(s, 1).status().message().find("not a TorchScript module PyTorch 1.13 can load") != std::string::npos);
  s.torchscript.path = Module("mlp.pt");
  s.torchscript.loss = "module";
  CHECK(Learner::Create(s, 1).status().message().find("exports no loss(output, target) method") != std::string::npos);
  s.torchscript.path = "";
  CHECK(Learner::Create(s, 1).status().message().find("needs model.path") != std::string::npos);
}

TEST_CASE("a module that throws in training fails that training with a status, and the learner keeps working") {
  auto l = Load("train_throws.pt");
  REQUIRE(l->Check(Images()).ok());  // evaluation mode: it runs
  TrainOptions o;
  auto r = l->Train(Images(), Range(64), o);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kFailed);
  CHECK(r.status().message().find("this module refuses to train") != std::string::npos);
  CHECK(r.status().message().find("[32, 1, 28, 28]") != std::string::npos);
  CHECK(l->Evaluate(Images()).ok());
}

TEST_CASE("the module's exported loss is used when it has one; cross-entropy and mse otherwise") {
  auto own = Load("with_loss.pt");
  auto ce = Load("with_loss.pt", "cross_entropy");
  const double l_own = own->Evaluate(Images()).value().loss, l_ce = ce->Evaluate(Images()).value().loss;
  CHECK(l_own > l_ce);  // cross-entropy + 0.01 x mean squared logit
  CHECK(l_own < l_ce + 0.5);
  // Regression: 8 float features, 2 targets that are a linear function of them; mse by default.
  Dataset d;
  d.type = SampleType::kF32;
  d.shape = {8};
  d.num_classes = 0;
  d.target_dim = 2;
  d.mean = {0.0f};
  d.std = {1.0f};
  for (int i = 0; i < 256; ++i) {
    float s0 = 0, s1 = 0;
    for (int k = 0; k < 8; ++k) {
      const float v = std::sin(0.37f * static_cast<float>(i * 8 + k));
      d.features.push_back(v);
      s0 += v * static_cast<float>(k % 3) * 0.2f;
      s1 -= v * 0.1f;
    }
    d.targets.push_back(s0);
    d.targets.push_back(s1);
  }
  auto reg = Load("regressor.pt", "auto", 0);
  REQUIRE(reg->Check(d).ok());
  const double before = reg->Evaluate(d).value().loss;
  TrainOptions o;
  o.epochs = 20;
  o.learning_rate = 0.1f;
  o.momentum = 0.5f;
  REQUIRE(reg->Train(d, Range(256), o).ok());
  CHECK(reg->Evaluate(d).value().loss < 0.3 * before);
  auto wrong = Load("regressor.pt", "auto", 0);
  d.target_dim = 1;
  d.targets.resize(256);
  CHECK(wrong->Check(d).message().find("output has shape [8, 2]; the targets need [8, 1]") != std::string::npos);
}

TEST_CASE("a TorchScript learner saves a module that loads back with its trained weights") {
  auto l = Load("mlp.pt");
  TrainOptions o;
  REQUIRE(l->Train(Images(), Range(128), o).ok());
  const std::string path = (std::filesystem::temp_directory_path() / "edgebed-ts-save.pt").string();
  REQUIRE(l->Save(path).ok());
  ModelSpec s;
  s.name = "torchscript";
  s.torchscript.path = path;
  auto back = Learner::Create(s, 1);
  REQUIRE(back.ok());
  CHECK(MaxAbsDiff(back.value()->GetParams(), l->GetParams()) == 0.0);
  std::filesystem::remove(path);
}
