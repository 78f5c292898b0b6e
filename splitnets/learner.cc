#include "splitnets/learner.h"

#include <cstdio>

#include <torch/torch.h>

#include "splitnets/learner_impl.h"
#include "splitnets/transfer.h"

#include <algorithm>
#include <chrono>
#include <numeric>

#include "codecs/rng.h"

namespace edgebed {
namespace {

// Fashion-MNIST pixel mean and standard deviation (of x / 255 over the training set).
constexpr float kPixelMean = 0.2860f;
constexpr float kPixelStd = 0.3530f;

struct Built {
  torch::nn::Sequential net;
  int64_t flops = 0;
};

Result<Built> Build(const std::string& name) {
  namespace nn = torch::nn;
  Built b;
  if (name == "cnn") {
    // 28x28 -> conv3x3(16) -> pool -> conv3x3(32) -> pool -> fc(64) -> fc(10); ~106k parameters.
    b.net = nn::Sequential(
        nn::Conv2d(nn::Conv2dOptions(1, 16, 3).padding(1)), nn::ReLU(), nn::MaxPool2d(2),
        nn::Conv2d(nn::Conv2dOptions(16, 32, 3).padding(1)), nn::ReLU(), nn::MaxPool2d(2),
        nn::Flatten(), nn::Linear(32 * 7 * 7, 64), nn::ReLU(), nn::Linear(64, 10));
    b.flops = 2 * (28 * 28 * 16 * 9 + 14 * 14 * 32 * 16 * 9 + 32 * 49 * 64 + 64 * 10);
  } else if (name == "mlp") {
    b.net = nn::Sequential(nn::Flatten(), nn::Linear(784, 128), nn::ReLU(), nn::Linear(128, 10));
    b.flops = 2 * (784 * 128 + 128 * 10);
  } else if (name == "logreg") {
    b.net = nn::Sequential(nn::Flatten(), nn::Linear(784, 10));
    b.flops = 2 * 784 * 10;
  } else {
    return Status::InvalidArgument("model '" + name + "' is unknown; known: cnn, mlp, logreg");
  }
  return b;
}

}  // namespace

void MakeBatch(const Dataset& d, const uint32_t* idx, size_t count, torch::Tensor* x, torch::Tensor* y) {
  const size_t px = static_cast<size_t>(d.rows) * static_cast<size_t>(d.cols);
  *x = torch::empty({static_cast<int64_t>(count), 1, d.rows, d.cols});
  *y = torch::empty({static_cast<int64_t>(count)}, torch::kLong);
  float* xp = x->data_ptr<float>();
  int64_t* yp = y->data_ptr<int64_t>();
  const float scale = 1.0f / (255.0f * kPixelStd), shift = kPixelMean / kPixelStd;
  for (size_t i = 0; i < count; ++i) {
    const uint8_t* src = d.images.data() + static_cast<size_t>(idx[i]) * px;
    for (size_t j = 0; j < px; ++j) xp[i * px + j] = src[j] * scale - shift;
    yp[i] = d.labels[idx[i]];
  }
}

void FinishImpl(Learner::Impl* impl, const std::vector<std::pair<std::string, torch::Tensor>>& trainable,
                const std::vector<std::pair<std::string, torch::Tensor>>& buffers) {
  for (const auto& [name, t] : trainable) {
    impl->trainable.push_back(t);
    impl->state.push_back(t);
    impl->specs.push_back({name, t.sizes().vec()});
  }
  for (const auto& [name, t] : buffers) {
    if (t.scalar_type() != torch::kFloat) continue;  // e.g. BN's num_batches_tracked
    impl->state.push_back(t);
    impl->specs.push_back({name, t.sizes().vec()});
  }
  impl->full_model_bytes = 0;
  for (const auto& t : impl->root->parameters()) impl->full_model_bytes += t.numel() * sizeof(float);
  for (const auto& t : impl->root->buffers())
    if (t.scalar_type() == torch::kFloat) impl->full_model_bytes += t.numel() * sizeof(float);
  if (!impl->set_mode) {
    auto root = impl->root;
    impl->set_mode = [root](bool training) { root->train(training); };
  }
}

void SetTorchThreads(int n) {
  torch::set_num_threads(std::max(1, n));
}

std::vector<std::string> Learner::Models() { return {"cnn", "mlp", "logreg", "irbnet", "irbnet_hs"}; }

Result<std::unique_ptr<Learner>> Learner::Create(const std::string& model, uint64_t seed) {
  ModelSpec spec;
  spec.name = model;
  return Create(spec, seed);
}

Result<std::unique_ptr<Learner>> Learner::Create(const ModelSpec& spec, uint64_t seed) {
  if (spec.name == "irbnet" || spec.name == "irbnet_hs") return CreateIrbLearner(spec, seed);
  if (spec.is_transfer())
    return Status::InvalidArgument("transfer.backbone is set but model '" + spec.name +
                                   "' has no backbone; transfer needs model irbnet or irbnet_hs");
  if (spec.num_classes < 2 || spec.num_classes > 10)  // the zoo keeps 10 outputs; fewer classes use the first
    return Status::InvalidArgument("model '" + spec.name + "': classes must number 2..10, got " +
                                   std::to_string(spec.num_classes));
  torch::manual_seed(DeriveSeed(seed, "model-init"));
  auto built = Build(spec.name);
  if (!built.ok()) return built.status();
  auto impl = std::make_unique<Impl>();
  impl->name = spec.name;
  torch::nn::Sequential net = built.value().net;
  impl->root = net.ptr();
  impl->forward = [net](const torch::Tensor& x) mutable { return net->forward(x); };
  impl->forward_flops = built.value().flops;
  impl->train_flops = 3 * impl->forward_flops;
  std::vector<std::pair<std::string, torch::Tensor>> params, buffers;
  for (const auto& kv : net->named_parameters()) params.emplace_back(kv.key(), kv.value());
  for (const auto& kv : net->named_buffers()) buffers.emplace_back(kv.key(), kv.value());
  FinishImpl(impl.get(), params, buffers);
  return Wrap(std::move(impl));
}

std::unique_ptr<Learner> Learner::Wrap(std::unique_ptr<Impl> impl) {
  return std::unique_ptr<Learner>(new Learner(std::move(impl)));
}
Learner::Learner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Learner::~Learner() = default;

const std::string& Learner::model_name() const { return impl_->name; }
const std::vector<TensorSpec>& Learner::specs() const { return impl_->specs; }
int64_t Learner::ForwardFlops() const { return impl_->forward_flops; }
int64_t Learner::TrainFlops() const { return impl_->train_flops; }
uint64_t Learner::FullModelBytes() const { return impl_->full_model_bytes; }
int Learner::TrainableBlocks() const { return impl_->trainable_blocks; }
Status Learner::SaveBackbone(const std::string& path) const {
  if (!impl_->save_backbone) return Status::InvalidArgument("model '" + impl_->name + "' has no backbone to save");
  return impl_->save_backbone(path);
}

ParamSet StateToParams(const std::vector<torch::Tensor>& state, const std::vector<TensorSpec>& specs) {
  ParamSet p = ParamSet::Zeros(specs);
  size_t off = 0;
  for (const auto& t : state) {
    auto c = t.detach().contiguous();
    std::memcpy(p.flat.data() + off, c.data_ptr<float>(), static_cast<size_t>(c.numel()) * sizeof(float));
    off += static_cast<size_t>(c.numel());
  }
  return p;
}

Status ParamsToState(const ParamSet& p, const std::vector<TensorSpec>& specs, std::vector<torch::Tensor>* state) {
  EDGEBED_RETURN_IF_ERROR(CheckLayout(specs, p));
  torch::NoGradGuard no_grad;
  size_t off = 0;
  for (auto& t : *state) {
    auto src = torch::from_blob(const_cast<float*>(p.flat.data() + off), t.sizes());
    t.copy_(src);
    off += static_cast<size_t>(t.numel());
  }
  return Status::Ok();
}

Status SaveModule(const torch::nn::Module& m, const std::string& path) {
  try {
    torch::serialize::OutputArchive archive;
    m.save(archive);
    archive.save_to(path + ".tmp");  // replaced whole or not at all: a reader never sees half a model
  } catch (const std::exception& e) {
    std::remove((path + ".tmp").c_str());
    return Status::IoError("cannot write model to " + path + ": " + e.what());
  }
  if (std::rename((path + ".tmp").c_str(), path.c_str()) != 0) {
    std::remove((path + ".tmp").c_str());
    return Status::IoError("cannot write model to " + path + ": rename failed");
  }
  return Status::Ok();
}

ParamSet Learner::GetParams() const { return StateToParams(impl_->state, impl_->specs); }

Status Learner::SetParams(const ParamSet& p) { return ParamsToState(p, impl_->specs, &impl_->state); }

TrainStats Learner::Train(const Dataset& data, const std::vector<uint32_t>& indices,
                          const TrainOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  TrainStats st;
  st.samples = indices.size();
  if (indices.empty() || opt.epochs <= 0) return st;
  impl_->set_mode(true);
  const int64_t live_before = CountedLiveBytes();
  ResetCountedPeak();
  torch::optim::SGD sgd(impl_->trainable,
                        torch::optim::SGDOptions(opt.learning_rate).momentum(opt.momentum));
  Rng rng = MakeRng(opt.seed, "batch-order");
  std::vector<uint32_t> order = indices;
  const size_t bs = static_cast<size_t>(std::max(1, opt.batch_size));
  const size_t batches_per_epoch = (order.size() + bs - 1) / bs;
  const size_t total_batches = batches_per_epoch * static_cast<size_t>(opt.epochs);
  size_t done = 0;
  double loss_sum = 0.0;
  size_t loss_count = 0;
  torch::Tensor x, y;
  for (int e = 0; e < opt.epochs; ++e) {
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t b = 0; b < order.size(); b += bs) {
      const size_t n = std::min(bs, order.size() - b);
      MakeBatch(data, order.data() + b, n, &x, &y);
      sgd.zero_grad();
      const int64_t at_batch = CountedLiveBytes();
      auto loss = torch::nn::functional::cross_entropy(impl_->forward(x), y);
      st.kept_for_backward_bytes = std::max(st.kept_for_backward_bytes, CountedLiveBytes() - at_batch);
      loss.backward();
      sgd.step();
      loss_sum += loss.item<double>() * static_cast<double>(n);
      loss_count += n;
      ++done;
      if (opt.on_progress && !opt.on_progress(static_cast<float>(done) / total_batches)) {
        e = opt.epochs;
        break;
      }
    }
  }
  st.mean_loss = loss_count ? loss_sum / static_cast<double>(loss_count) : 0.0;
  if (CountingAllocatorInstalled()) st.peak_train_bytes = std::max<int64_t>(0, CountedPeakBytes() - live_before);
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return st;
}

EvalStats Learner::Evaluate(const Dataset& data, const std::vector<uint32_t>* indices) const {
  const auto t0 = std::chrono::steady_clock::now();
  EvalStats st;
  std::vector<uint32_t> all;
  if (!indices) {
    all.resize(data.size());
    std::iota(all.begin(), all.end(), 0u);
    indices = &all;
  }
  impl_->set_mode(false);
  torch::NoGradGuard no_grad;
  constexpr size_t kBatch = 1000;
  double loss_sum = 0.0;
  int64_t correct = 0;
  torch::Tensor x, y;
  for (size_t b = 0; b < indices->size(); b += kBatch) {
    const size_t n = std::min(kBatch, indices->size() - b);
    MakeBatch(data, indices->data() + b, n, &x, &y);
    auto logits = impl_->forward(x);
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    correct += logits.argmax(1).eq(y).sum().item<int64_t>();
  }
  st.samples = indices->size();
  if (st.samples) {
    st.loss = loss_sum / static_cast<double>(st.samples);
    st.accuracy = static_cast<double>(correct) / static_cast<double>(st.samples);
  }
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return st;
}

Status Learner::Save(const std::string& path) const { return SaveModule(*impl_->root, path); }

}  // namespace edgebed
