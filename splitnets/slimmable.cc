#include "splitnets/slimmable.h"

#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <sstream>

#include "codecs/rng.h"
#include "splitnets/learner_impl.h"
#include "splitnets/optimizer_state.h"
#include "splitnets/slimmable_impl.h"

namespace edgebed {
namespace F = torch::nn::functional;

namespace slim {

std::string WidthList(const SlimConfig& cfg) {
  std::string s;
  for (double w : cfg.widths) s += (s.empty() ? "" : ", ") + WidthLabel(w);
  return "{" + s + "}";
}

Status UnknownWidth(const SlimConfig& cfg, double width) {
  return Status::InvalidArgument("width " + std::to_string(width) + " is not one of the network's widths " +
                                 WidthList(cfg));
}

std::unique_ptr<torch::optim::SGD> MakeSgd(const std::vector<torch::Tensor>& params, SgdConfig sgd) {
  return std::make_unique<torch::optim::SGD>(
      params, torch::optim::SGDOptions(sgd.learning_rate).momentum(sgd.momentum));
}

// A convolution weight drawn with He initialisation for its full fan-in.
torch::Tensor ConvWeight(int out, int in, int k) {
  auto w = torch::empty({out, in, k, k});
  torch::nn::init::kaiming_normal_(w, 0.0, torch::kFanIn, torch::kReLU);
  return w;
}

// Registers BN layers [width] for channels(width) and records their state.
std::vector<torch::nn::BatchNorm2d> SwitchableBn(torch::nn::Module* m, const std::string& name,
                                                 const std::vector<int>& channels) {
  std::vector<torch::nn::BatchNorm2d> out;
  for (size_t i = 0; i < channels.size(); ++i)
    out.push_back(m->register_module(name + "_w" + std::to_string(i),
                                     torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(channels[i]))));
  return out;
}

// Parameters first (conv weights, BN weight and bias, linear), then BN running statistics: the
// exchanged state and its specs, in the module's registration order.
void CollectState(torch::nn::Module& m, std::vector<torch::Tensor>* state, std::vector<TensorSpec>* specs) {
  for (const auto& kv : m.named_parameters()) {
    state->push_back(kv.value());
    specs->push_back({kv.key(), kv.value().sizes().vec()});
  }
  for (const auto& kv : m.named_buffers()) {
    if (kv.value().scalar_type() != torch::kFloat) continue;
    state->push_back(kv.value());
    specs->push_back({kv.key(), kv.value().sizes().vec()});
  }
}

// A module's parameters and buffers (batch-norm statistics and counters) and its SGD's momentum, as
// bytes in torch's archive format; `what` names the network in errors.
Result<std::string> SaveTraining(const torch::nn::Module& m, const torch::optim::SGD* opt, const char* what) {
  try {
    torch::serialize::OutputArchive ar, module, o;
    m.save(module);
    ar.write("module", module);
    if (opt) {
      opt->save(o);
      ar.write("optimizer", o);
    }
    std::ostringstream os;
    ar.save_to(os);
    return os.str();
  } catch (const c10::Error& e) {
    return Status::Failed(std::string("cannot serialise the ") + what + ": " + e.what_without_backtrace());
  }
}

Status LoadTraining(torch::nn::Module& m, torch::optim::SGD* opt, const std::string& bytes, const char* what) {
  try {
    torch::serialize::InputArchive ar, module, o;
    std::istringstream is(bytes);
    ar.load_from(is);
    if (!ar.try_read("module", module) || (opt && !ar.try_read("optimizer", o)))
      return Status::InvalidArgument(std::string("the ") + what + "'s training state lacks its module or optimiser part");
    m.load(module);
    if (opt) {
      opt->load(o);
      RestoreZeroGradients(*opt);
    }
    return Status::Ok();
  } catch (const c10::Error& e) {
    return Status::InvalidArgument(std::string("the ") + what + "'s training state does not load: " + e.what_without_backtrace());
  }
}

void SetLr(torch::optim::SGD& opt, float lr) {
  for (auto& g : opt.param_groups()) static_cast<torch::optim::SGDOptions&>(g.options()).lr(lr);
}

torch::Tensor FromFloats(const float* p, std::vector<int64_t> shape) {
  return torch::from_blob(const_cast<float*>(p), shape).clone();
}

torch::Tensor Labels(const uint8_t* labels, size_t n) {
  auto y = torch::empty({static_cast<int64_t>(n)}, torch::kLong);
  int64_t* p = y.data_ptr<int64_t>();
  for (size_t i = 0; i < n; ++i) p[i] = labels[i];
  return y;
}

}  // namespace slim

using namespace slim;

std::string WidthLabel(double width) { return std::to_string(width).substr(0, 5); }

Status SlimConfig::Validate() const {
  if (widths.empty()) return Status::InvalidArgument("split.widths is empty; give widths in (0, 1], e.g. [0.25, 0.5, 0.75, 1.0]");
  for (size_t i = 0; i < widths.size(); ++i) {
    if (!(widths[i] > 0.0 && widths[i] <= 1.0))
      return Status::InvalidArgument("split.widths[" + std::to_string(i) + "] = " + std::to_string(widths[i]) +
                                     " is outside (0, 1]");
    if (i > 0 && !(widths[i] > widths[i - 1]))
      return Status::InvalidArgument("split.widths must be strictly ascending (entry " + std::to_string(i) + ")");
  }
  if (bottleneck_channels < 1 || bottleneck_channels > 64)
    return Status::InvalidArgument("split.bottleneck_channels = " + std::to_string(bottleneck_channels) +
                                   " is outside 1..64");
  for (size_t i = 1; i < widths.size(); ++i)
    if (BottleneckChannels(*this, widths[i]) == BottleneckChannels(*this, widths[i - 1]))
      return Status::InvalidArgument("split.widths " + std::to_string(widths[i - 1]) + " and " +
                                     std::to_string(widths[i]) + " give the same bottleneck (" +
                                     std::to_string(BottleneckChannels(*this, widths[i])) +
                                     " channels of split.bottleneck_channels = " + std::to_string(bottleneck_channels) + ")");
  if (num_classes < 2 || num_classes > 10) return Status::InvalidArgument("classes must number 2..10");
  return Status::Ok();
}

int SlimChannels(int base, double width) {
  return std::max(1, static_cast<int>(std::lround(width * base)));
}
int BottleneckChannels(const SlimConfig& cfg, double width) { return SlimChannels(cfg.bottleneck_channels, width); }
uint64_t BottleneckBytesPerSample(const SlimConfig& cfg, double width) {
  return static_cast<uint64_t>(BottleneckChannels(cfg, width)) * kBottleneckSide * kBottleneckSide;
}

int64_t EncoderFlops(const SlimConfig& cfg, double width) {
  const int64_t c1 = SlimChannels(kEncoderBase[0], width), c2 = SlimChannels(kEncoderBase[1], width),
                c3 = SlimChannels(kEncoderBase[2], width), cb = BottleneckChannels(cfg, width);
  return 2 * (28 * 28 * c1 * 1 * 9 + 14 * 14 * c2 * c1 * 9 + 7 * 7 * c3 * c2 * 9 + 7 * 7 * cb * c3);
}

int64_t DecoderFlops(const SlimConfig& cfg, double width) {
  const int64_t cb = BottleneckChannels(cfg, width), c = kDecoderChannels;
  return 2 * (7 * 7 * c * cb * 9 + 4 * 4 * c * c * 9 + 16 * c * kDecoderHidden + kDecoderHidden * cfg.num_classes);
}

int WidthIndex(const SlimConfig& cfg, double width) {
  for (size_t i = 0; i < cfg.widths.size(); ++i)
    if (std::fabs(cfg.widths[i] - width) < 1e-9) return static_cast<int>(i);
  return -1;
}

// ---------------------------------------------------------------------------------------- encoder

int SlimEncoder::Impl::Channels(int layer, int widx) const {
  const double w = cfg.widths[static_cast<size_t>(widx)];
  return layer < 3 ? SlimChannels(kEncoderBase[layer], w) : BottleneckChannels(cfg, w);
}

torch::Tensor SlimEncoder::Impl::Forward(const torch::Tensor& x, int widx) {
  torch::Tensor h = x;
  for (int l = 0; l < 4; ++l) {
    const int64_t in = h.size(1), out = Channels(l, widx);
    auto w = weight[static_cast<size_t>(l)].narrow(0, 0, out).narrow(1, 0, in);
    h = F::conv2d(h, w, F::Conv2dFuncOptions().stride(kEncoderStride[l]).padding(kEncoderKernel[l] / 2));
    h = bn[static_cast<size_t>(l)][static_cast<size_t>(widx)]->forward(h);
    h = l < 3 ? torch::relu(h) : torch::sigmoid(h);
  }
  return h;
}

Result<std::unique_ptr<SlimEncoder>> SlimEncoder::Create(const SlimConfig& cfg, uint64_t seed, SgdConfig sgd) {
  EDGEBED_RETURN_IF_ERROR(cfg.Validate());
  torch::manual_seed(DeriveSeed(seed, "slim-encoder-init"));
  std::unique_ptr<SlimEncoder> e(new SlimEncoder());
  e->impl_ = std::make_unique<Impl>();
  Impl& m = *e->impl_;
  m.cfg = cfg;
  m.active = static_cast<int>(cfg.widths.size()) - 1;
  const int base[4] = {kEncoderBase[0], kEncoderBase[1], kEncoderBase[2], cfg.bottleneck_channels};
  for (int l = 0; l < 4; ++l) {
    const int in = l == 0 ? 1 : base[l - 1];
    m.weight.push_back(m.register_parameter("conv" + std::to_string(l + 1) + "_weight",
                                            ConvWeight(base[l], in, kEncoderKernel[l])));
    std::vector<int> ch;
    for (size_t i = 0; i < cfg.widths.size(); ++i) ch.push_back(m.Channels(l, static_cast<int>(i)));
    m.bn.push_back(SwitchableBn(&m, "bn" + std::to_string(l + 1), ch));
  }
  CollectState(m, &m.state, &m.specs);
  m.opt = MakeSgd(m.parameters(), sgd);
  return e;
}

SlimEncoder::~SlimEncoder() = default;
const SlimConfig& SlimEncoder::config() const { return impl_->cfg; }
double SlimEncoder::width() const { return impl_->cfg.widths[static_cast<size_t>(impl_->active)]; }

Status SlimEncoder::SetWidth(double width) {
  const int i = WidthIndex(impl_->cfg, width);
  if (i < 0) return UnknownWidth(impl_->cfg, width);
  impl_->active = i;
  return Status::Ok();
}

void SlimEncoder::Images(const Dataset& d, const uint32_t* idx, size_t n, std::vector<float>* x,
                         std::vector<uint8_t>* labels) {
  torch::Tensor xt, yt;
  MakeBatch(d, idx, n, &xt, &yt);
  x->assign(xt.data_ptr<float>(), xt.data_ptr<float>() + xt.numel());
  labels->resize(n);
  const int64_t* y = yt.data_ptr<int64_t>();
  for (size_t i = 0; i < n; ++i) (*labels)[i] = static_cast<uint8_t>(y[i]);
}

Status SlimEncoder::Encode(const float* x, size_t n, bool train, std::vector<float>* act) {
  if (n == 0) return Status::InvalidArgument("encode: empty batch");
  Impl& m = *impl_;
  auto xt = FromFloats(x, {static_cast<int64_t>(n), 1, 28, 28});
  m.train(train);
  torch::Tensor y;
  if (train) {
    y = m.Forward(xt, m.active);
    m.pending[m.active] = y;
  } else {
    torch::NoGradGuard no_grad;
    y = m.Forward(xt, m.active);
  }
  auto c = y.detach().contiguous();
  act->assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  return Status::Ok();
}

Status SlimEncoder::Backward(double width, const std::vector<float>& grad) {
  Impl& m = *impl_;
  const int i = WidthIndex(m.cfg, width);
  if (i < 0) return UnknownWidth(m.cfg, width);
  auto it = m.pending.find(i);
  if (it == m.pending.end())
    return Status::InvalidArgument("backward at width " + std::to_string(width) + " without a training encode at it");
  const torch::Tensor& y = it->second;
  if (static_cast<int64_t>(grad.size()) != y.numel())
    return Status::InvalidArgument("gradient at width " + std::to_string(width) + " has " + std::to_string(grad.size()) +
                                   " values; the bottleneck has " + std::to_string(y.numel()));
  y.backward(FromFloats(grad.data(), y.sizes().vec()));
  m.pending.erase(it);
  return Status::Ok();
}

void SlimEncoder::Step() {
  impl_->opt->step();
  impl_->opt->zero_grad();
  impl_->pending.clear();
}

void SlimEncoder::Discard() {
  impl_->opt->zero_grad();
  impl_->pending.clear();
}

void SlimEncoder::SetLearningRate(float lr) { SetLr(*impl_->opt, lr); }

const std::vector<TensorSpec>& SlimEncoder::specs() const { return impl_->specs; }
ParamSet SlimEncoder::GetParams() const { return StateToParams(impl_->state, impl_->specs); }
Status SlimEncoder::SetParams(const ParamSet& p) { return ParamsToState(p, impl_->specs, &impl_->state); }
Status SlimEncoder::Save(const std::string& path) const { return SaveModule(*impl_, path); }

int64_t SlimEncoder::NumParameterValues() const {
  int64_t n = 0;
  for (const auto& p : impl_->parameters()) n += p.numel();
  return n;
}

std::vector<const void*> SlimEncoder::ParameterData() const {
  std::vector<const void*> out;
  for (const auto& p : impl_->parameters()) out.push_back(p.data_ptr());
  return out;
}

Result<std::string> SlimEncoder::SaveTrainingState() const { return SaveTraining(*impl_, impl_->opt.get(), "encoder"); }
Status SlimEncoder::LoadTrainingState(const std::string& b) { return LoadTraining(*impl_, impl_->opt.get(), b, "encoder"); }

}  // namespace edgebed
