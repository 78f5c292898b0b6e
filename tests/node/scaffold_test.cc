// SCAFFOLD on the node (Karimireddy et al. 2020, option II): the gradient correction c - c_i, and the
// control variate's update c_i+ = c_i - c + (x - y) / (K lr), against the closed forms.
#include <doctest/doctest.h>

#include <cmath>

#include "codecs/wire.h"
#include "node/local_training.h"
#include "splitnets/learner.h"

using namespace edgebed;

namespace {

const Dataset& Data() {
  static Dataset d = [] {
    auto r = LoadFashionMnist(DefaultFashionMnistDir(), true, 640);
    REQUIRE(r.ok());
    return std::move(r).value();
  }();
  return d;
}

std::vector<uint32_t> First(uint32_t n) {
  std::vector<uint32_t> v(n);
  for (uint32_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

wire::FitIns Ins(const ParamSet& global, const std::vector<float>* c) {
  wire::FitIns ins;
  ins.set_round(1);
  wire::ToTensors(global, ins.mutable_params());
  ins.set_local_epochs(1);
  ins.set_batch_size(32);
  ins.set_learning_rate(0.05f);
  ins.set_seed(4);
  if (c) wire::ToTensors(ParamSet{global.specs, *c}, ins.mutable_control());
  return ins;
}

}  // namespace

TEST_CASE("a gradient correction v moves one SGD step by exactly -lr v") {
  SetTorchThreads(1);
  auto a = Learner::Create("logreg", 2).value(), b = Learner::Create("logreg", 2).value();
  const ParamSet w0 = a->GetParams();
  std::vector<float> v(w0.flat.size());
  for (size_t i = 0; i < v.size(); ++i) v[i] = 0.01f * static_cast<float>(i % 7) - 0.03f;
  TrainOptions opt;
  opt.batch_size = 32;
  opt.learning_rate = 0.05f;
  opt.seed = 1;
  REQUIRE(a->Train(Data(), First(32), opt).ok());  // one batch: one step from w0
  opt.gradient_correction = &v;
  auto st = b->Train(Data(), First(32), opt);
  REQUIRE(st.ok());
  CHECK(st->steps == 1);
  const ParamSet pa = a->GetParams(), pb = b->GetParams();
  for (size_t i = 0; i < v.size(); i += 97) CHECK(pb.flat[i] - pa.flat[i] == doctest::Approx(-0.05 * v[i]).epsilon(1e-3));
  std::vector<float> short_v(3);
  opt.gradient_correction = &short_v;
  CHECK(b->Train(Data(), First(32), opt).status().message().find("gradient correction has 3 values") != std::string::npos);
}

TEST_CASE("LocalFit with a control variate: c_i+ = c_i - c + (x - y) / (K lr), sent as c_i+ - c_i") {
  SetTorchThreads(1);
  auto learner = Learner::Create("logreg", 3).value();
  const ParamSet x = learner->GetParams();
  std::vector<float> c(x.flat.size());
  for (size_t i = 0; i < c.size(); ++i) c[i] = 0.002f * std::sin(static_cast<float>(i));
  std::vector<float> ci;  // the node's c_i: starts at 0
  wire::FitRes res;
  REQUIRE(LocalFit(*learner, Data(), First(320), Ins(x, &c), nullptr, &res, nullptr, nullptr, &ci).ok());
  ParamSet update, delta;
  REQUIRE(wire::FromTensors(res.update(), "update", &x.specs, &update).ok());
  REQUIRE(wire::FromTensors(res.control_delta(), "control_delta", &x.specs, &delta).ok());
  const double k_lr = 10 * 0.05;  // 320 samples / 32 = 10 steps
  for (size_t i = 0; i < c.size(); i += 53) {
    const double expect = 0.0 - c[i] - update.flat[i] / k_lr;
    CHECK(ci[i] == doctest::Approx(expect).epsilon(1e-5));
    CHECK(delta.flat[i] == doctest::Approx(expect).epsilon(1e-5));  // c_i+ - 0
  }
  // A second round starts from that c_i: the delta is c_i+ - c_i again.
  const std::vector<float> before = ci;
  REQUIRE(learner->SetParams(x).ok());
  wire::FitRes res2;
  REQUIRE(LocalFit(*learner, Data(), First(320), Ins(x, &c), nullptr, &res2, nullptr, nullptr, &ci).ok());
  ParamSet update2, delta2;
  REQUIRE(wire::FromTensors(res2.update(), "update", &x.specs, &update2).ok());
  REQUIRE(wire::FromTensors(res2.control_delta(), "control_delta", &x.specs, &delta2).ok());
  for (size_t i = 0; i < c.size(); i += 53) {
    CHECK(ci[i] == doctest::Approx(before[i] - c[i] - update2.flat[i] / k_lr).epsilon(1e-5));
    CHECK(delta2.flat[i] == doctest::Approx(ci[i] - before[i]).epsilon(1e-4));
  }
  // With c = c_i the correction is zero: the update is plain training's.
  auto plain = Learner::Create("logreg", 3).value();
  wire::FitRes res3, res4;
  std::vector<float> zero_ci;
  const std::vector<float> zero_c(x.flat.size(), 0.0f);
  REQUIRE(LocalFit(*plain, Data(), First(320), Ins(x, nullptr), nullptr, &res3, nullptr, nullptr, nullptr).ok());
  REQUIRE(plain->SetParams(x).ok());
  REQUIRE(LocalFit(*plain, Data(), First(320), Ins(x, &zero_c), nullptr, &res4, nullptr, nullptr, &zero_ci).ok());
  CHECK(res3.update(0).data() == res4.update(0).data());
  // A node that keeps no control variate refuses fit_ins.control.
  wire::FitRes res5;
  CHECK(LocalFit(*plain, Data(), First(32), Ins(x, &c), nullptr, &res5, nullptr, nullptr, nullptr).message().find("fit_ins.control") !=
        std::string::npos);
}
