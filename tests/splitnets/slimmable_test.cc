// Slimmable split network: a narrow width is exactly a separately built narrow network holding the
// sliced weights; switching width allocates and reloads nothing; the sandwich rule's widths; the
// 8-bit bottleneck's size; split training learns at every width.
#include <torch/torch.h>
#undef CHECK  // glog (via torch) defines CHECK; doctest's is wanted here
#define CHECK DOCTEST_CHECK
#include <doctest/doctest.h>

#include <numeric>
#include <set>

#include "codecs/activation_codec.h"
#include "splitnets/slimmable_impl.h"
#include "splitnets/split_training.h"

using namespace edgebed;

namespace {

// A plain libtorch network for width index `widx`: convolutions built at the narrow size with the
// slimmable encoder's weights sliced into them, and that width's batch norms copied.
torch::nn::Sequential NarrowCopy(SlimEncoder::Impl& m, int widx) {
  torch::nn::Sequential seq;
  torch::NoGradGuard no_grad;
  int in = 1;
  for (int l = 0; l < 4; ++l) {
    const int out = m.Channels(l, widx);
    auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kEncoderKernel[l])
                                      .stride(kEncoderStride[l])
                                      .padding(kEncoderKernel[l] / 2)
                                      .bias(false));
    conv->weight.copy_(m.weight[static_cast<size_t>(l)].narrow(0, 0, out).narrow(1, 0, in));
    auto bn = torch::nn::BatchNorm2d(out);
    const auto& src = m.bn[static_cast<size_t>(l)][static_cast<size_t>(widx)];
    bn->weight.copy_(src->weight);
    bn->bias.copy_(src->bias);
    bn->running_mean.copy_(src->running_mean);
    bn->running_var.copy_(src->running_var);
    seq->push_back(conv);
    seq->push_back(bn);
    if (l < 3) {
      seq->push_back(torch::nn::ReLU());
    } else {
      seq->push_back(torch::nn::Sigmoid());
    }
    in = out;
  }
  seq->eval();
  return seq;
}

std::vector<float> RandomImages(size_t n, uint64_t seed) {
  torch::manual_seed(seed);
  auto x = torch::randn({static_cast<int64_t>(n), 1, 28, 28});
  return std::vector<float>(x.data_ptr<float>(), x.data_ptr<float>() + x.numel());
}

}  // namespace

TEST_CASE("a narrow width computes what a separately built narrow network with the sliced weights computes") {
  auto enc = SlimEncoder::Create(SlimConfig{}, 7);
  REQUIRE(enc.ok());
  SlimEncoder& e = *enc.value();
  // Train a little so that the BN statistics and weights differ per width.
  const auto x = RandomImages(16, 3);
  std::vector<std::vector<float>> acts;
  for (int step = 0; step < 3; ++step) {
    REQUIRE(EncodeWidths(e, x.data(), 16, {1.0, 0.5, 0.25}, &acts).ok());
    for (size_t k = 0; k < 3; ++k) {
      std::vector<float> g(acts[k].size(), 0.01f);
      REQUIRE(e.Backward(std::vector<double>{1.0, 0.5, 0.25}[k], g).ok());
    }
    e.Step();
  }
  const auto probe = RandomImages(5, 11);
  for (double w : e.config().widths) {
    REQUIRE(e.SetWidth(w).ok());
    std::vector<float> act;
    REQUIRE(e.Encode(probe.data(), 5, /*train=*/false, &act).ok());
    const int c = BottleneckChannels(e.config(), w);
    REQUIRE(act.size() == 5u * c * 49);
    auto narrow = NarrowCopy(*e.impl(), WidthIndex(e.config(), w));
    torch::NoGradGuard no_grad;
    auto ref = narrow->forward(torch::from_blob(const_cast<float*>(probe.data()), {5, 1, 28, 28}));
    auto got = torch::from_blob(act.data(), ref.sizes()).clone();
    CHECK_MESSAGE((got - ref).abs().max().item<float>() < 1e-5f, "width " << w);
  }
  // And the widths really differ from each other (the check above is not vacuous).
  std::vector<float> a, b;
  REQUIRE(e.SetWidth(1.0).ok());
  REQUIRE(e.Encode(probe.data(), 5, false, &a).ok());
  REQUIRE(e.SetWidth(0.25).ok());
  REQUIRE(e.Encode(probe.data(), 5, false, &b).ok());
  CHECK(a.size() == 4 * b.size());
}

TEST_CASE("switching width allocates no parameters and keeps every weight where it was") {
  auto enc = SlimEncoder::Create(SlimConfig{}, 1);
  REQUIRE(enc.ok());
  SlimEncoder& e = *enc.value();
  const auto count = e.NumParameterValues();
  const auto where = e.ParameterData();
  const auto params = e.GetParams();
  const auto x = RandomImages(2, 5);
  std::vector<float> act;
  for (int rep = 0; rep < 3; ++rep)
    for (double w : {0.25, 1.0, 0.5, 0.75}) {
      REQUIRE(e.SetWidth(w).ok());
      CHECK(e.width() == w);
      REQUIRE(e.Encode(x.data(), 2, false, &act).ok());
    }
  CHECK(e.NumParameterValues() == count);
  CHECK(e.ParameterData() == where);
  CHECK(e.GetParams().flat == params.flat);  // inference changed nothing (no BN statistics either)
  const Status bad = e.SetWidth(0.3);
  CHECK(!bad.ok());
  CHECK(bad.message().find("not one of the network's widths") != std::string::npos);
}

TEST_CASE("bottleneck bytes per sample follow the width; the 8-bit codec rounds to the nearest level") {
  SlimConfig cfg;
  CHECK(BottleneckBytesPerSample(cfg, 0.25) == 98);
  CHECK(BottleneckBytesPerSample(cfg, 0.5) == 196);
  CHECK(BottleneckBytesPerSample(cfg, 0.75) == 294);
  CHECK(BottleneckBytesPerSample(cfg, 1.0) == 392);
  SlimConfig eighth;
  eighth.widths = {0.125, 0.25, 0.5, 1.0};
  CHECK(BottleneckBytesPerSample(eighth, 0.125) == 49);  // ml.md: {1,2,4,8} channels = 49/98/196/392 bytes
  CHECK(EncoderFlops(cfg, 0.5) < EncoderFlops(cfg, 1.0) / 3);
  SlimConfig dup;
  dup.widths = {0.5, 0.55};
  CHECK(dup.Validate().message().find("same bottleneck") != std::string::npos);

  std::vector<float> v = {0.0f, 1.0f, 0.5f, 0.1234f, -3.0f, 7.0f};
  std::vector<uint8_t> q;
  QuantiseUnit8(v, &q);
  std::vector<float> back;
  DequantiseUnit8(q.data(), q.size(), &back);
  CHECK(q[0] == 0);
  CHECK(q[1] == 255);
  CHECK(q[4] == 0);
  CHECK(q[5] == 255);
  for (size_t i = 0; i < 4; ++i) CHECK(std::fabs(back[i] - v[i]) <= 0.5f / 255.0f + 1e-7f);
}

TEST_CASE("the sandwich rule: widest first, narrowest last, random ones between, drawn from the seed") {
  SlimConfig cfg;
  cfg.widths = {0.25, 0.375, 0.5, 0.625, 0.75, 1.0};
  Rng rng = MakeRng(1, "t");
  std::set<double> middles;
  for (int i = 0; i < 50; ++i) {
    const auto w = StepWidths(cfg, 2, 0.0, rng);
    REQUIRE(w.size() == 4);
    CHECK(w.front() == 1.0);
    CHECK(w.back() == 0.25);
    CHECK(w[1] > w[2]);
    middles.insert(w[1]);
    middles.insert(w[2]);
  }
  CHECK(middles.size() == 4);  // every middle width is drawn at some step
  CHECK(StepWidths(cfg, 0, 0.0, rng).size() == 2);
  CHECK(StepWidths(cfg, 9, 0.0, rng).size() == 6);
  CHECK(StepWidths(cfg, 1, 0.5, rng) == std::vector<double>{0.5});
}

TEST_CASE("split training with the sandwich rule learns at every width; a bad decoder input is refused") {
  auto train = LoadFashionMnist(DefaultFashionMnistDir(), true, 3000);
  auto test = LoadFashionMnist(DefaultFashionMnistDir(), false, 1000);
  REQUIRE(train.ok());
  REQUIRE(test.ok());
  auto enc = SlimEncoder::Create(SlimConfig{}, 1, {0.05f, 0.9f});
  auto dec = SlimDecoder::Create(SlimConfig{}, 1, {0.05f, 0.9f});
  REQUIRE(enc.ok());
  REQUIRE(dec.ok());
  std::vector<uint32_t> idx(train->size());
  std::iota(idx.begin(), idx.end(), 0u);
  std::vector<double> before;
  for (double w : SlimConfig{}.widths) before.push_back(EvaluateSplit(*enc.value(), *dec.value(), test.value(), w, true).accuracy);
  SplitTrainOptions opt;
  opt.epochs = 2;
  opt.seed = 3;
  const auto st = TrainSplitLocal(*enc.value(), *dec.value(), train.value(), idx, opt);
  CHECK(st.steps == 2 * ((3000 + 31) / 32));
  for (size_t i = 0; i < SlimConfig{}.widths.size(); ++i) {
    const double w = SlimConfig{}.widths[i];
    const auto ev = EvaluateSplit(*enc.value(), *dec.value(), test.value(), w, true);
    CHECK_MESSAGE(ev.accuracy > 0.6, "width " << w << " accuracy " << ev.accuracy);
    CHECK(ev.accuracy > before[i] + 0.3);
  }
  std::vector<float> act(2 * 4 * 49, 0.5f);
  std::vector<uint8_t> labels = {1, 12};
  auto bad_label = dec.value()->TrainStep({{0.5, act.data()}}, 2, labels.data(), true);
  CHECK(!bad_label.ok());
  CHECK(bad_label.status().message().find("outside 0..9") != std::string::npos);
  labels[1] = 2;
  auto bad_width = dec.value()->TrainStep({{0.4, act.data()}}, 2, labels.data(), true);
  CHECK(!bad_width.ok());
  CHECK(bad_width.status().message().find("0.4") != std::string::npos);
}

TEST_CASE("the decoder's training state survives a checkpoint: a restored decoder steps exactly as the original") {
  const SlimConfig cfg;
  auto a = SlimDecoder::Create(cfg, 1, {0.05f, 0.9f});
  REQUIRE(a.ok());
  torch::manual_seed(5);
  const auto act_t = torch::rand({4, BottleneckChannels(cfg, 1.0), 7, 7});
  const std::vector<float> act(act_t.data_ptr<float>(), act_t.data_ptr<float>() + act_t.numel());
  const std::vector<uint8_t> labels = {1, 2, 3, 4};
  auto step = [&](SlimDecoder& d) { REQUIRE(d.TrainStep({{1.0, act.data()}}, 4, labels.data(), false).ok()); };
  step(*a.value());
  step(*a.value());  // the momentum buffers now hold two steps
  auto state = a.value()->SaveTrainingState();
  REQUIRE(state.ok());

  // Another decoder (another seed) given the state, and one given only the parameters.
  auto b = SlimDecoder::Create(cfg, 2, {0.05f, 0.9f});
  auto c = SlimDecoder::Create(cfg, 2, {0.05f, 0.9f});
  REQUIRE(b.ok());
  REQUIRE(c.ok());
  REQUIRE(b.value()->LoadTrainingState(state.value()).ok());
  CHECK(b.value()->GetParams().flat == a.value()->GetParams().flat);
  REQUIRE(c.value()->SetParams(a.value()->GetParams()).ok());
  step(*a.value());
  step(*b.value());
  step(*c.value());
  CHECK(b.value()->GetParams().flat == a.value()->GetParams().flat);
  CHECK(c.value()->GetParams().flat != a.value()->GetParams().flat);  // without the momentum the step differs

  auto cut = b.value()->LoadTrainingState(state.value().substr(0, state.value().size() / 2));
  CHECK(!cut.ok());
  CHECK(cut.message().find("training state") != std::string::npos);
}

TEST_CASE("one decoder step over K nodes' batches: each gets its own step's gradients, the parameters their sum over sqrt(K)") {
  const SlimConfig cfg;
  torch::manual_seed(9);
  auto floats = [](const torch::Tensor& t) { return std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + t.numel()); };
  const auto a1 = floats(torch::rand({4, BottleneckChannels(cfg, 1.0), 7, 7}));
  const auto a25 = floats(torch::rand({4, BottleneckChannels(cfg, 0.25), 7, 7}));
  const auto a5 = floats(torch::rand({4, BottleneckChannels(cfg, 0.5), 7, 7}));
  const std::vector<uint8_t> labels = {1, 2, 3, 4}, other = {5, 6, 7, 8};
  const std::vector<SlimDecoder::Input> in = {{1.0, a1.data()}, {0.25, a25.data()}};
  auto one = SlimDecoder::Create(cfg, 1, {0.05f, 0.9f});
  auto two = SlimDecoder::Create(cfg, 1, {0.05f, 0.9f});
  REQUIRE(one.ok());
  REQUIRE(two.ok());
  const ParamSet p0 = one.value()->GetParams();
  REQUIRE(two.value()->GetParams().flat == p0.flat);  // the same seed: the same decoder
  auto s1 = one.value()->TrainStep(in, 4, labels.data(), true);
  // The same batch from two nodes: batch norm's statistics over both are those of one batch, so
  // each gets exactly the single step's gradients, and the parameters move sqrt(2) times as far as
  // with one (the first step: SGD's momentum buffer is the gradient).
  auto s2 = two.value()->TrainBatches({{in, 4, labels.data()}, {in, 4, labels.data()}}, true);
  REQUIRE(s1.ok());
  REQUIRE(s2.ok());
  REQUIRE(s2->size() == 2);
  for (const DecoderStep& s : s2.value()) {
    REQUIRE(s.grad.size() == 2);
    CHECK(s.loss[0] == doctest::Approx(s1->loss[0]).epsilon(1e-6));
    CHECK(s.loss[1] == doctest::Approx(s1->loss[1]).epsilon(1e-6));
    for (size_t k = 0; k < 2; ++k) {
      REQUIRE(s.grad[k].size() == s1->grad[k].size());
      float top = 0.0f, diff = 0.0f;
      for (size_t i = 0; i < s.grad[k].size(); ++i) {
        top = std::max(top, std::fabs(s1->grad[k][i]));
        diff = std::max(diff, std::fabs(s.grad[k][i] - s1->grad[k][i]));
      }
      CHECK(top > 0.0f);
      CHECK(diff <= 1e-5f * top);
    }
  }
  // The parameters take the sum of the batches' gradients over sqrt(K). Batches {1.0, 0.25} and
  // {1.0 alone} of the same samples (batch norm's statistics are those of one batch at every width):
  // one step on both moves each parameter by (what a step on each alone moves it, summed) / sqrt(2).
  auto widest = SlimDecoder::Create(cfg, 1, {0.05f, 0.9f});
  auto both = SlimDecoder::Create(cfg, 1, {0.05f, 0.9f});
  REQUIRE(widest.ok());
  REQUIRE(both.ok());
  const std::vector<SlimDecoder::Input> in1 = {{1.0, a1.data()}};
  REQUIRE(widest.value()->TrainStep(in1, 4, labels.data(), true).ok());
  REQUIRE(both.value()->TrainBatches({{in, 4, labels.data()}, {in1, 4, labels.data()}}, true).ok());
  const ParamSet pa = one.value()->GetParams(), pb = widest.value()->GetParams(), p2 = two.value()->GetParams(),
                 pm = both.value()->GetParams();
  size_t at = 0, checked = 0, off_same = 0, off_sum = 0, moved = 0;
  for (const auto& spec : p0.specs) {
    const auto n = static_cast<size_t>(spec.numel());
    if (spec.name.find("running") == std::string::npos && spec.name.find("num_batches") == std::string::npos) {
      // A gradient is a float32 sum whose order depends on the batch's size and the threads: its
      // error scales with the tensor's largest steps, not with each entry's (which may cancel).
      float top = 0.0f;
      for (size_t i = at; i < at + n; ++i)
        top = std::max({top, std::fabs(pa.flat[i] - p0.flat[i]), std::fabs(pb.flat[i] - p0.flat[i])});
      for (size_t i = at; i < at + n; ++i) {
        const float da = pa.flat[i] - p0.flat[i], db = pb.flat[i] - p0.flat[i];
        // float32 rounds p + step to half a unit in the last place of p: up to two units here
        const float ulp = std::fabs(p0.flat[i]) * 1.2e-7f + 1e-12f;
        const float tol = 1e-5f * top + 2.0f * ulp;
        off_same += std::fabs((p2.flat[i] - p0.flat[i]) - std::sqrt(2.0f) * da) > tol;
        off_sum += std::fabs((pm.flat[i] - p0.flat[i]) - (da + db) / std::sqrt(2.0f)) > tol;
        moved += std::fabs(da - db) > 100.0f * tol;  // where the 0.25 input's distillation loss counts
        ++checked;
      }
    }
    at += n;
  }
  CHECK(checked > 100000);
  CHECK(off_same == 0);
  CHECK(off_sum == 0);
  CHECK(moved > 1000);  // the two single steps differ: the result is neither of them scaled

  // Batches at different widths: each width's stack takes what the batches have at it; every batch
  // gets its gradients in its own order and shapes. A bad batch names itself and changes nothing.
  auto three = two.value()->TrainBatches({{in, 4, labels.data()}, {{{1.0, a1.data()}, {0.5, a5.data()}}, 4, other.data()}}, true);
  REQUIRE(three.ok());
  CHECK(three.value()[1].grad[1].size() == a5.size());
  CHECK(three.value()[1].grad[0].size() == a1.size());
  const ParamSet before = two.value()->GetParams();
  const std::vector<uint8_t> bad = {1, 2, 3, 11};
  auto refused = two.value()->TrainBatches({{in, 4, labels.data()}, {in, 4, bad.data()}}, true);
  CHECK(refused.status().message().find("batch 1: label 11 of sample 3") == 0);
  CHECK(two.value()->GetParams().flat == before.flat);
}

TEST_CASE("an encoder and decoder restored from their training states train on exactly as the originals") {
  // Another seed's networks given the states: parameters, statistics, momentum, and the zero
  // gradients SGD keeps moving by momentum (a width's batch norms untouched in a step still move).
  auto train = LoadFashionMnist(DefaultFashionMnistDir(), true, 256);
  REQUIRE(train.ok());
  std::vector<uint32_t> idx(train->size());
  std::iota(idx.begin(), idx.end(), 0u);
  auto enc = SlimEncoder::Create(SlimConfig{}, 1, {0.05f, 0.9f});
  auto dec = SlimDecoder::Create(SlimConfig{}, 1, {0.05f, 0.9f});
  REQUIRE(enc.ok());
  REQUIRE(dec.ok());
  SplitTrainOptions opt;
  opt.seed = 3;
  TrainSplitLocal(*enc.value(), *dec.value(), train.value(), idx, opt);
  auto es = enc.value()->SaveTrainingState();
  auto ds = dec.value()->SaveTrainingState();
  REQUIRE(es.ok());
  REQUIRE(ds.ok());
  auto enc2 = SlimEncoder::Create(SlimConfig{}, 2, {0.05f, 0.9f});
  auto dec2 = SlimDecoder::Create(SlimConfig{}, 2, {0.05f, 0.9f});
  REQUIRE(enc2.ok());
  REQUIRE(dec2.ok());
  REQUIRE(enc2.value()->LoadTrainingState(es.value()).ok());
  REQUIRE(dec2.value()->LoadTrainingState(ds.value()).ok());
  CHECK(enc2.value()->GetParams().flat == enc.value()->GetParams().flat);
  CHECK(dec2.value()->GetParams().flat == dec.value()->GetParams().flat);
  opt.seed = 4;
  TrainSplitLocal(*enc.value(), *dec.value(), train.value(), idx, opt);
  TrainSplitLocal(*enc2.value(), *dec2.value(), train.value(), idx, opt);
  CHECK(enc2.value()->GetParams().flat == enc.value()->GetParams().flat);
  CHECK(dec2.value()->GetParams().flat == dec.value()->GetParams().flat);
}
