// The server's half of the slimmable split network (slimmable.h): decoder and classifier, BN per width.
#include <torch/torch.h>

#include <cmath>

#include "codecs/rng.h"
#include "splitnets/learner_impl.h"
#include "splitnets/slimmable.h"
#include "splitnets/slimmable_impl.h"

namespace edgebed {
namespace F = torch::nn::functional;
using namespace slim;

struct SlimDecoder::Impl : torch::nn::Module {
  SlimConfig cfg;
  torch::Tensor w1, w2;
  std::vector<torch::nn::BatchNorm2d> bn1, bn2;
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  std::unique_ptr<torch::optim::SGD> opt;
  std::vector<torch::Tensor> state;
  std::vector<TensorSpec> specs;

  torch::Tensor Forward(const torch::Tensor& a, int widx) {
    auto o = F::Conv2dFuncOptions().padding(1);
    auto h = torch::relu(bn1[static_cast<size_t>(widx)]->forward(F::conv2d(a, w1.narrow(1, 0, a.size(1)), o)));
    h = torch::relu(bn2[static_cast<size_t>(widx)]->forward(F::conv2d(h, w2, o.stride(2))));
    return fc2->forward(torch::relu(fc1->forward(h.flatten(1))));
  }

  // The input tensor of `in` for n samples, checked against the width's bottleneck.
  Result<torch::Tensor> Input(const SlimDecoder::Input& in, size_t n, int* widx) const {
    *widx = WidthIndex(cfg, in.width);
    if (*widx < 0) return UnknownWidth(cfg, in.width);
    if (in.act == nullptr) return Status::InvalidArgument("no bottleneck values");
    const int64_t c = BottleneckChannels(cfg, in.width);
    return FromFloats(in.act, {static_cast<int64_t>(n), c, kBottleneckSide, kBottleneckSide});
  }
};

Result<std::unique_ptr<SlimDecoder>> SlimDecoder::Create(const SlimConfig& cfg, uint64_t seed, SgdConfig sgd) {
  EDGEBED_RETURN_IF_ERROR(cfg.Validate());
  torch::manual_seed(DeriveSeed(seed, "slim-decoder-init"));
  std::unique_ptr<SlimDecoder> d(new SlimDecoder());
  d->impl_ = std::make_unique<Impl>();
  Impl& m = *d->impl_;
  m.cfg = cfg;
  m.w1 = m.register_parameter("conv1_weight", ConvWeight(kDecoderChannels, cfg.bottleneck_channels, 3));
  m.w2 = m.register_parameter("conv2_weight", ConvWeight(kDecoderChannels, kDecoderChannels, 3));
  const std::vector<int> ch(cfg.widths.size(), kDecoderChannels);
  m.bn1 = SwitchableBn(&m, "bn1", ch);
  m.bn2 = SwitchableBn(&m, "bn2", ch);
  m.fc1 = m.register_module("fc1", torch::nn::Linear(kDecoderChannels * 16, kDecoderHidden));
  m.fc2 = m.register_module("fc2", torch::nn::Linear(kDecoderHidden, cfg.num_classes));
  CollectState(m, &m.state, &m.specs);
  m.opt = MakeSgd(m.parameters(), sgd);
  return d;
}

SlimDecoder::~SlimDecoder() = default;
const SlimConfig& SlimDecoder::config() const { return impl_->cfg; }

Result<DecoderStep> SlimDecoder::TrainStep(const std::vector<Input>& in, size_t n, const uint8_t* labels,
                                           bool distill) {
  auto steps = TrainBatches({Batch{in, n, labels}}, distill);
  if (!steps.ok()) return steps.status();
  return std::move(steps.value()[0]);
}

Result<std::vector<DecoderStep>> SlimDecoder::TrainBatches(const std::vector<Batch>& batches, bool distill) {
  Impl& m = *impl_;
  if (batches.empty()) return Status::InvalidArgument("train step: no batches");
  // Where each (batch, input) sits: its width's stack and the rows it takes there.
  struct Place {
    int widx = 0;
    int64_t row = 0;
  };
  std::vector<std::vector<Place>> place(batches.size());
  std::vector<std::vector<torch::Tensor>> parts(m.cfg.widths.size());
  std::vector<int64_t> rows(m.cfg.widths.size(), 0);
  std::vector<torch::Tensor> y(batches.size());
  for (size_t j = 0; j < batches.size(); ++j) {
    const Batch& b = batches[j];
    const std::string which = batches.size() > 1 ? "batch " + std::to_string(j) + ": " : "";
    if (b.in.empty() || b.n == 0 || b.labels == nullptr)
      return Status::InvalidArgument(which + "train step: no widths, no samples or no labels");
    for (size_t i = 0; i < b.n; ++i)
      if (b.labels[i] >= m.cfg.num_classes)
        return Status::InvalidArgument(which + "label " + std::to_string(b.labels[i]) + " of sample " + std::to_string(i) +
                                       " is outside 0.." + std::to_string(m.cfg.num_classes - 1));
    y[j] = Labels(b.labels, b.n);
    for (const Input& in : b.in) {
      int widx = -1;
      auto t = m.Input(in, b.n, &widx);
      if (!t.ok()) return Status::InvalidArgument(which + t.status().message());
      place[j].push_back({widx, rows[static_cast<size_t>(widx)]});
      rows[static_cast<size_t>(widx)] += static_cast<int64_t>(b.n);
      parts[static_cast<size_t>(widx)].push_back(std::move(t).value());
    }
  }
  m.train(true);
  std::vector<torch::Tensor> inputs(m.cfg.widths.size()), logits(m.cfg.widths.size());
  for (size_t w = 0; w < parts.size(); ++w) {
    if (parts[w].empty()) continue;
    inputs[w] = (parts[w].size() == 1 ? parts[w][0] : torch::cat(parts[w])).requires_grad_(true);
    logits[w] = m.Forward(inputs[w], static_cast<int>(w));
  }
  std::vector<DecoderStep> out(batches.size());
  torch::Tensor total;
  for (size_t j = 0; j < batches.size(); ++j) {
    const auto n = static_cast<int64_t>(batches[j].n);
    torch::Tensor soft;
    for (size_t k = 0; k < place[j].size(); ++k) {
      const Place& at = place[j][k];
      auto l = logits[static_cast<size_t>(at.widx)].narrow(0, at.row, n);
      auto ce = F::cross_entropy(l, y[j]);
      torch::Tensor loss = ce;
      if (k == 0) {
        soft = torch::softmax(l.detach(), 1);
      } else if (distill) {
        loss = -(soft * torch::log_softmax(l, 1)).sum(1).mean();
      }
      total = total.defined() ? total + loss : loss;
      out[j].loss.push_back(ce.item<double>());
      out[j].correct.push_back(static_cast<size_t>(l.argmax(1).eq(y[j]).sum().item<int64_t>()));
    }
  }
  m.opt->zero_grad();
  total.backward();
  if (batches.size() > 1) {  // the inputs keep their own batch's gradient; the parameters sum / sqrt(K)
    torch::NoGradGuard no_grad;
    const double scale = 1.0 / std::sqrt(static_cast<double>(batches.size()));
    for (auto& p : m.parameters())
      if (p.grad().defined()) p.grad().mul_(scale);
  }
  m.opt->step();
  std::vector<torch::Tensor> grads(inputs.size());
  for (size_t w = 0; w < inputs.size(); ++w)
    if (inputs[w].defined()) grads[w] = inputs[w].grad().contiguous();
  for (size_t j = 0; j < batches.size(); ++j)
    for (const Place& at : place[j]) {
      auto g = grads[static_cast<size_t>(at.widx)].narrow(0, at.row, static_cast<int64_t>(batches[j].n));
      const float* p = g.data_ptr<float>();  // rows of a contiguous tensor are contiguous
      out[j].grad.emplace_back(p, p + g.numel());
    }
  return out;
}

Status SlimDecoder::Predict(const Input& in, size_t n, std::vector<uint8_t>* classes, const uint8_t* labels,
                            double* loss_sum) {
  Impl& m = *impl_;
  int widx = -1;
  auto t = m.Input(in, n, &widx);
  if (!t.ok()) return t.status();
  torch::NoGradGuard no_grad;
  m.train(false);
  auto logits = m.Forward(t.value(), widx);
  auto pred = logits.argmax(1);
  classes->resize(n);
  const int64_t* p = pred.data_ptr<int64_t>();
  for (size_t i = 0; i < n; ++i) (*classes)[i] = static_cast<uint8_t>(p[i]);
  if (labels != nullptr && loss_sum != nullptr) {
    const auto y = Labels(labels, n);
    *loss_sum += F::cross_entropy(logits, y, F::CrossEntropyFuncOptions().reduction(torch::kSum)).item<double>();
  }
  return Status::Ok();
}

void SlimDecoder::SetLearningRate(float lr) { SetLr(*impl_->opt, lr); }

const std::vector<TensorSpec>& SlimDecoder::specs() const { return impl_->specs; }
ParamSet SlimDecoder::GetParams() const { return StateToParams(impl_->state, impl_->specs); }
Status SlimDecoder::SetParams(const ParamSet& p) { return ParamsToState(p, impl_->specs, &impl_->state); }
Status SlimDecoder::Save(const std::string& path) const { return SaveModule(*impl_, path); }

Result<std::string> SlimDecoder::SaveTrainingState() const { return SaveTraining(*impl_, impl_->opt.get(), "decoder"); }
Status SlimDecoder::LoadTrainingState(const std::string& b) { return LoadTraining(*impl_, impl_->opt.get(), b, "decoder"); }

}  // namespace edgebed
