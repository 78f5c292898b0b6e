#include "splitnets/learner.h"

#include <torch/torch.h>

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

// Copies samples `idx[begin, end)` into a normalised [B, 1, rows, cols] tensor and their labels.
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

}  // namespace

struct Learner::Impl {
  std::string name;
  Built built;
  std::vector<torch::Tensor> state;  // parameters then float buffers, in named order
  std::vector<TensorSpec> specs;
};

void SetTorchThreads(int n) {
  torch::set_num_threads(std::max(1, n));
}

std::vector<std::string> Learner::Models() { return {"cnn", "mlp", "logreg"}; }

Result<std::unique_ptr<Learner>> Learner::Create(const std::string& model, uint64_t seed) {
  torch::manual_seed(DeriveSeed(seed, "model-init"));
  auto built = Build(model);
  if (!built.ok()) return built.status();
  auto impl = std::make_unique<Impl>();
  impl->name = model;
  impl->built = std::move(built.value());
  for (const auto& kv : impl->built.net->named_parameters()) {
    impl->state.push_back(kv.value());
    impl->specs.push_back({kv.key(), kv.value().sizes().vec()});
  }
  for (const auto& kv : impl->built.net->named_buffers()) {
    if (kv.value().scalar_type() != torch::kFloat) continue;  // e.g. BN's num_batches_tracked
    impl->state.push_back(kv.value());
    impl->specs.push_back({kv.key(), kv.value().sizes().vec()});
  }
  return std::unique_ptr<Learner>(new Learner(std::move(impl)));
}

Learner::Learner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Learner::~Learner() = default;

const std::string& Learner::model_name() const { return impl_->name; }
const std::vector<TensorSpec>& Learner::specs() const { return impl_->specs; }
int64_t Learner::ForwardFlops() const { return impl_->built.flops; }

ParamSet Learner::GetParams() const {
  ParamSet p = ParamSet::Zeros(impl_->specs);
  size_t off = 0;
  for (const auto& t : impl_->state) {
    auto c = t.detach().contiguous();
    std::memcpy(p.flat.data() + off, c.data_ptr<float>(), static_cast<size_t>(c.numel()) * sizeof(float));
    off += static_cast<size_t>(c.numel());
  }
  return p;
}

Status Learner::SetParams(const ParamSet& p) {
  EDGEBED_RETURN_IF_ERROR(CheckLayout(impl_->specs, p));
  torch::NoGradGuard no_grad;
  size_t off = 0;
  for (auto& t : impl_->state) {
    auto src = torch::from_blob(const_cast<float*>(p.flat.data() + off), t.sizes());
    t.copy_(src);
    off += static_cast<size_t>(t.numel());
  }
  return Status::Ok();
}

TrainStats Learner::Train(const Dataset& data, const std::vector<uint32_t>& indices,
                          const TrainOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  TrainStats st;
  st.samples = indices.size();
  if (indices.empty() || opt.epochs <= 0) return st;
  auto& net = impl_->built.net;
  net->train();
  torch::optim::SGD sgd(net->parameters(),
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
      auto loss = torch::nn::functional::cross_entropy(net->forward(x), y);
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
  auto& net = impl_->built.net;
  net->eval();
  torch::NoGradGuard no_grad;
  constexpr size_t kBatch = 1000;
  double loss_sum = 0.0;
  int64_t correct = 0;
  torch::Tensor x, y;
  for (size_t b = 0; b < indices->size(); b += kBatch) {
    const size_t n = std::min(kBatch, indices->size() - b);
    MakeBatch(data, indices->data() + b, n, &x, &y);
    auto logits = net->forward(x);
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

Status Learner::Save(const std::string& path) const {
  try {
    torch::serialize::OutputArchive archive;
    impl_->built.net->save(archive);
    archive.save_to(path);
  } catch (const std::exception& e) {
    return Status::IoError("cannot write model to " + path + ": " + e.what());
  }
  return Status::Ok();
}

}  // namespace edgebed
