// MobileTL on libtorch: the custom autograd functions, the IRB network, the counting allocator and
// the retained-bytes measurement (transfer.h, mobiletl_ops.h); the transfer learner is in
// mobiletl_learner.cc.
#include <ATen/Parallel.h>
#include <c10/core/CPUAllocator.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <atomic>
#include <cstdlib>
#include <map>
#include <sstream>

#include "codecs/rng.h"
#include "splitnets/learner_impl.h"
#include "splitnets/mobiletl_ops.h"
#include "splitnets/transfer.h"

namespace edgebed {
namespace {

// ---- the counting allocator -------------------------------------------------------------------
// Every block carries a 64-byte header with its size, so the (stateless) deleter can count the free.
constexpr size_t kHeader = 64;
std::atomic<int64_t> g_live{0}, g_peak{0};
std::atomic<bool> g_installed{false};

void CountingFree(void* p) {
  if (!p) return;
  char* base = static_cast<char*>(p) - kHeader;
  const int64_t n = *reinterpret_cast<int64_t*>(base);
  g_live.fetch_sub(n, std::memory_order_relaxed);
  std::free(base);
}

struct CountingAllocator final : at::Allocator {
  at::DataPtr allocate(size_t n) const override {
    void* base = nullptr;
    if (posix_memalign(&base, kHeader, n + kHeader) != 0 || !base) throw std::bad_alloc();
    *reinterpret_cast<int64_t*>(base) = static_cast<int64_t>(n);
    const int64_t live = g_live.fetch_add(static_cast<int64_t>(n), std::memory_order_relaxed) + static_cast<int64_t>(n);
    int64_t peak = g_peak.load(std::memory_order_relaxed);
    while (live > peak && !g_peak.compare_exchange_weak(peak, live, std::memory_order_relaxed)) {
    }
    void* data = static_cast<char*>(base) + kHeader;
    return {data, data, &CountingFree, at::Device(at::DeviceType::CPU)};  // data == context
  }
  at::DeleterFnPtr raw_deleter() const override { return &CountingFree; }
};

}  // namespace

void InstallCountingAllocator() {
  static CountingAllocator allocator;
  bool expected = false;
  if (g_installed.compare_exchange_strong(expected, true)) c10::SetCPUAllocator(&allocator, /*priority=*/100);
}
bool CountingAllocatorInstalled() { return g_installed.load(); }
int64_t CountedLiveBytes() { return g_live.load(); }
int64_t CountedPeakBytes() { return g_peak.load(); }
void ResetCountedPeak() { g_peak.store(g_live.load()); }

namespace mobiletl {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

bool MaskBit(float x, Activation act) { return act == kRelu6 ? ((x > 0.0f) & (x < 6.0f)) : x > 0.0f; }

torch::Tensor Activate(const torch::Tensor& x, Activation act) {
  return act == kRelu6 ? torch::hardtanh(x, 0.0, 6.0) : torch::hardswish(x);
}

namespace {
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the bit packing reads 8 mask bytes as one word");

// Bytes [first, end) of the packed mask: 0/1 bytes first (a loop the compiler vectorises), then each
// 8 of them into one byte with a multiply (bit j of the top byte = byte j).
template <Activation kAct>
void PackBytes(const float* x, uint8_t* out, int64_t first, int64_t end) {
  constexpr int64_t kChunk = 512;
  uint8_t bits[8 * kChunk];
  for (int64_t i = first; i < end; i += kChunk) {
    const int64_t m = std::min(kChunk, end - i);
    const float* v = x + 8 * i;
    for (int64_t k = 0; k < 8 * m; ++k) bits[k] = static_cast<uint8_t>(MaskBit(v[k], kAct));
    for (int64_t k = 0; k < m; ++k) {
      uint64_t w;
      std::memcpy(&w, bits + 8 * k, 8);
      out[i + k] = static_cast<uint8_t>((w * 0x0102040810204080ULL) >> 56);
    }
  }
}

// For each mask byte, 8 words of all-ones or zero: the backward is a bitwise AND on the gradient's
// bits, exactly a select (NaN and -0 pass where the mask is 1, and become +0 where it is 0).
const std::array<std::array<uint32_t, 8>, 256>& UnpackTable() {
  static const auto table = [] {
    std::array<std::array<uint32_t, 8>, 256> t{};
    for (int b = 0; b < 256; ++b)
      for (int j = 0; j < 8; ++j) t[b][j] = ((b >> j) & 1) ? 0xFFFFFFFFu : 0u;
    return t;
  }();
  return table;
}
}  // namespace

torch::Tensor PackMask(const torch::Tensor& x, Activation act) {
  auto xc = x.contiguous();
  const int64_t n = xc.numel(), whole = n / 8;
  auto packed = torch::empty({(n + 7) / 8}, torch::kUInt8);
  const float* xp = xc.data_ptr<float>();
  uint8_t* mp = packed.data_ptr<uint8_t>();
  at::parallel_for(0, whole, 8192, [&](int64_t begin, int64_t end) {
    if (act == kRelu6) PackBytes<kRelu6>(xp, mp, begin, end);
    else PackBytes<kHardSwish>(xp, mp, begin, end);
  });
  if (n % 8) {  // the last, partial byte
    uint8_t b = 0;
    for (int64_t j = 0; j < n % 8; ++j) b |= static_cast<uint8_t>(MaskBit(xp[8 * whole + j], act)) << j;
    mp[whole] = b;
  }
  return packed;
}

torch::Tensor ApplyMask(const torch::Tensor& grad, const torch::Tensor& packed) {
  auto g = grad.contiguous();
  auto out = torch::empty_like(g);
  const int64_t n = g.numel(), whole = n / 8;
  const uint32_t* gp = reinterpret_cast<const uint32_t*>(g.data_ptr<float>());
  const uint8_t* mp = packed.data_ptr<uint8_t>();
  uint32_t* op = reinterpret_cast<uint32_t*>(out.data_ptr<float>());
  const auto& table = UnpackTable();
  at::parallel_for(0, whole, 8192, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const uint32_t* t = table[mp[i]].data();
      for (int j = 0; j < 8; ++j) op[8 * i + j] = gp[8 * i + j] & t[j];
    }
  });
  for (int64_t k = 8 * whole; k < n; ++k) op[k] = ((mp[k >> 3] >> (k & 7)) & 1) ? gp[k] : 0u;
  return out;
}

torch::Tensor MaskedActivation::forward(AutogradContext* ctx, const torch::Tensor& x, int64_t act) {
  ctx->save_for_backward({PackMask(x, static_cast<Activation>(act))});
  return Activate(x, static_cast<Activation>(act));
}

tensor_list MaskedActivation::backward(AutogradContext* ctx, tensor_list grads) {
  const auto saved = ctx->get_saved_variables();
  return {ApplyMask(grads[0], saved[0]), torch::Tensor()};
}

torch::Tensor ShiftOnlyBatchNorm::forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& bias,
                                          const torch::Tensor& weight, const torch::Tensor& running_mean,
                                          const torch::Tensor& running_var, double eps) {
  auto a = weight / torch::sqrt(running_var + eps);
  auto shift = bias - running_mean * a;
  ctx->save_for_backward({a});
  return torch::addcmul(shift.view({1, -1, 1, 1}), x, a.view({1, -1, 1, 1}));
}

tensor_list ShiftOnlyBatchNorm::backward(AutogradContext* ctx, tensor_list grads) {
  const auto a = ctx->get_saved_variables()[0];
  const auto& g = grads[0];
  const auto g3 = g.contiguous().view({g.size(0), g.size(1), -1});  // per channel: contiguous rows
  return {g * a.view({1, -1, 1, 1}), g3.sum(2).sum(0), torch::Tensor(), torch::Tensor(), torch::Tensor(),
          torch::Tensor()};
}

namespace {
namespace nn = torch::nn;
nn::Conv2d Conv(int in, int out, int k, int stride, int groups) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(k / 2).groups(groups).bias(false));
}
}  // namespace

IrbBlockImpl::IrbBlockImpl(const IrbShape& s, Activation a) : shape(s), act(a) {
  expand = register_module("expand", Conv(s.in, s.hidden, 1, 1, 1));
  bn1 = register_module("bn1", nn::BatchNorm2d(s.hidden));
  depthwise = register_module("depthwise", Conv(s.hidden, s.hidden, 3, s.stride, s.hidden));
  bn2 = register_module("bn2", nn::BatchNorm2d(s.hidden));
  project = register_module("project", Conv(s.hidden, s.out, 1, 1, 1));
  bn3 = register_module("bn3", nn::BatchNorm2d(s.out));
}

void IrbBlockImpl::SetRule(TrainRule r) { rule = r; }

torch::Tensor IrbBlockImpl::forward(const torch::Tensor& x) {
  const bool mtl = rule == TrainRule::kMobileTl && is_training() && torch::GradMode::is_enabled();
  auto norm = [&](nn::BatchNorm2d& bn, const torch::Tensor& h) {
    if (!mtl) return bn->forward(h);
    return ShiftOnlyBatchNorm::apply(h, bn->bias, bn->weight, bn->running_mean, bn->running_var,
                                     bn->options.eps());
  };
  auto activate = [&](const torch::Tensor& h) {
    return mtl ? MaskedActivation::apply(h, static_cast<int64_t>(act)) : Activate(h, act);
  };
  auto h = activate(norm(bn1, expand->forward(x)));
  h = activate(norm(bn2, depthwise->forward(h)));
  h = bn3->forward(project->forward(h));
  return shape.residual() ? h + x : h;
}

void FrozenBatchNorm_(torch::Tensor& h, const torch::nn::BatchNorm2d& bn) {
  const auto a = bn->weight / torch::sqrt(bn->running_var + bn->options.eps());
  h.mul_(a.view({1, -1, 1, 1})).add_((bn->bias - bn->running_mean * a).view({1, -1, 1, 1}));
}

namespace {
void Activate_(torch::Tensor& h, Activation act) {
  if (act == kRelu6) torch::hardtanh_(h, 0.0, 6.0);
  else torch::hardswish_(h);
}
}  // namespace

torch::Tensor IrbBlockImpl::ForwardFrozen(const torch::Tensor& x) {
  auto h = expand->forward(x);
  FrozenBatchNorm_(h, bn1);
  Activate_(h, act);
  h = depthwise->forward(h);
  FrozenBatchNorm_(h, bn2);
  Activate_(h, act);
  h = project->forward(h);
  FrozenBatchNorm_(h, bn3);
  return shape.residual() ? h.add_(x) : h;
}

torch::Tensor StemImpl::ForwardFrozen(const torch::Tensor& x) {
  auto h = conv->forward(x);
  FrozenBatchNorm_(h, bn);
  Activate_(h, act);
  return h;
}

StemImpl::StemImpl(Activation a) : act(a) {
  conv = register_module("conv", Conv(1, 16, 3, 1, 1));
  bn = register_module("bn", nn::BatchNorm2d(16));
}
torch::Tensor StemImpl::forward(const torch::Tensor& x) { return Activate(bn->forward(conv->forward(x)), act); }

FeaturesImpl::FeaturesImpl(Activation act) {
  stem = register_module("stem", Stem(act));
  block_list = register_module("blocks", nn::ModuleList());
  for (const auto& s : IrbNetBlocks()) {
    blocks.push_back(IrbBlock(s, act));
    block_list->push_back(blocks.back());
  }
}

torch::Tensor FeaturesImpl::forward(const torch::Tensor& x) {
  auto h = stem->forward(x);
  for (auto& b : blocks) h = b->forward(h);
  return h;
}

namespace {
std::string Shape(const torch::Tensor& t) {
  std::ostringstream o;
  o << t.sizes();
  return o.str();
}
}  // namespace

Status LoadBackbone(Features& f, const std::string& path) {
  torch::jit::Module m;
  try {
    m = torch::jit::load(path);
  } catch (const std::exception& e) {
    std::string what = e.what();
    return Status::IoError("cannot read backbone " + path + ": " + what.substr(0, what.find('\n')));
  }
  std::map<std::string, torch::Tensor> found;
  for (const auto& p : m.named_parameters(true)) found[p.name] = p.value;
  for (const auto& b : m.named_buffers(true)) found[b.name] = b.value;
  torch::NoGradGuard no_grad;
  auto copy = [&](const std::string& name, torch::Tensor& dst) -> Status {
    auto it = found.find(name);
    if (it == found.end())
      return Status::Corruption("backbone " + path + " has no tensor '" + name + "' (is it an irbnet backbone?)");
    if (!it->second.sizes().equals(dst.sizes()))
      return Status::Corruption("backbone " + path + ": '" + name + "' has shape " + Shape(it->second) +
                                " but irbnet needs " + Shape(dst));
    dst.copy_(it->second.to(dst.scalar_type()));
    return Status::Ok();
  };
  for (auto& kv : f->named_parameters()) EDGEBED_RETURN_IF_ERROR(copy(kv.key(), kv.value()));
  for (auto& kv : f->named_buffers())
    if (kv.value().scalar_type() == torch::kFloat) EDGEBED_RETURN_IF_ERROR(copy(kv.key(), kv.value()));
  return Status::Ok();
}

}  // namespace mobiletl

// ---- measuring what a block keeps for backward ---------------------------------------------------
Result<int64_t> MeasureRetainedBytes(const IrbShape& b, TrainRule rule, const std::string& activation, int batch,
                                     uint64_t seed) {
  if (activation != "relu6" && activation != "hardswish")
    return Status::InvalidArgument("activation '" + activation + "' is unknown; known: relu6, hardswish");
  if (batch < 1) return Status::InvalidArgument("batch must be >= 1");
  InstallCountingAllocator();
  torch::manual_seed(DeriveSeed(seed, "retained-bytes"));
  mobiletl::IrbBlock block(b, activation == "relu6" ? mobiletl::kRelu6 : mobiletl::kHardSwish);
  block->train();
  block->SetRule(rule);
  if (rule == TrainRule::kMobileTl) {
    block->bn1->eval();
    block->bn2->eval();
    for (auto* bn : {&block->bn1, &block->bn2}) (*bn)->weight.set_requires_grad(false);
  }
  auto x = torch::randn({batch, b.in, b.in_hw, b.in_hw});
  const int64_t before = CountedLiveBytes();
  int64_t retained = 0;
  {
    auto y = block->forward(x);
    auto graph = y.grad_fn();
    y = torch::Tensor();
    retained = CountedLiveBytes() - before;
  }
  return retained;
}

}  // namespace edgebed
