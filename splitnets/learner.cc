#include "splitnets/learner.h"

#include <dlfcn.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include <torch/torch.h>

#include "splitnets/learner_impl.h"
#include "splitnets/transfer.h"

#include <algorithm>
#include <chrono>
#include <numeric>

#include "codecs/rng.h"

namespace edgebed {
namespace {

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
  const size_t k = d.sample_numel();
  std::vector<int64_t> shape = d.sample_shape();
  shape.insert(shape.begin(), static_cast<int64_t>(count));
  if (d.type == SampleType::kI64) {
    *x = torch::empty(shape, torch::kLong);
    int64_t* xp = x->data_ptr<int64_t>();
    for (size_t i = 0; i < count; ++i)
      std::memcpy(xp + i * k, d.tokens.data() + static_cast<size_t>(idx[i]) * k, k * sizeof(int64_t));
  } else {
    *x = torch::empty(shape);
    float* xp = x->data_ptr<float>();
    // Per channel (the first axis of a sample) or one value: x' = x * scale - shift.
    const size_t channels = d.mean.size() > 1 ? d.mean.size() : 1, per_channel = k / channels;
    for (size_t c = 0; c < channels; ++c) {
      const float scale = 1.0f / ((d.type == SampleType::kU8 ? 255.0f : 1.0f) * d.std[c]), shift = d.mean[c] / d.std[c];
      for (size_t i = 0; i < count; ++i) {
        const size_t at = static_cast<size_t>(idx[i]) * k + c * per_channel;
        float* out = xp + i * k + c * per_channel;
        if (d.type == SampleType::kU8)
          for (size_t j = 0; j < per_channel; ++j) out[j] = d.images[at + j] * scale - shift;
        else
          for (size_t j = 0; j < per_channel; ++j) out[j] = d.features[at + j] * scale - shift;
      }
    }
  }
  if (d.regression()) {
    *y = torch::empty({static_cast<int64_t>(count), static_cast<int64_t>(d.target_dim)});
    float* yp = y->data_ptr<float>();
    for (size_t i = 0; i < count; ++i)
      std::memcpy(yp + i * d.target_dim, d.targets.data() + static_cast<size_t>(idx[i]) * d.target_dim, d.target_dim * sizeof(float));
  } else {
    *y = torch::empty({static_cast<int64_t>(count)}, torch::kLong);
    int64_t* yp = y->data_ptr<int64_t>();
    for (size_t i = 0; i < count; ++i) yp[i] = d.labels[idx[i]];
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
  if (impl->root) {
    for (const auto& t : impl->root->parameters()) impl->full_model_bytes += t.numel() * sizeof(float);
    for (const auto& t : impl->root->buffers())
      if (t.scalar_type() == torch::kFloat) impl->full_model_bytes += t.numel() * sizeof(float);
  } else {
    for (const auto& t : impl->state) impl->full_model_bytes += t.numel() * sizeof(float);
  }
  if (!impl->set_mode) {
    auto root = impl->root;
    impl->set_mode = [root](bool training) { root->train(training); };
  }
  if (!impl->loss)
    impl->loss = [](const torch::Tensor& out, const torch::Tensor& y) { return torch::nn::functional::cross_entropy(out, y); };
  if (!impl->save) {
    auto root = impl->root;
    impl->save = [root](const std::string& path) { return SaveModule(*root, path); };
  }
}

std::string TorchMessage(const std::exception& e) {
  const std::string full = dynamic_cast<const c10::Error*>(&e) ? dynamic_cast<const c10::Error*>(&e)->what_without_backtrace() : e.what();
  std::vector<std::string> lines;
  for (size_t at = 0; at < full.size();) {
    const size_t nl = std::min(full.find('\n', at), full.size());
    if (full.find_first_not_of(" \t", at) < nl) lines.push_back(full.substr(at, nl - at));
    at = nl + 1;
  }
  if (lines.size() <= 2) return lines.empty() ? full : lines.size() == 1 ? lines[0] : lines[0] + " " + lines[1];
  return lines.front() + " ... " + lines.back();  // a TorchScript traceback: what failed, and why
}

void SetBlasThreads(int n) {
  using Set = void (*)(int);
  if (auto set = reinterpret_cast<Set>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(std::max(1, n));
}

void SetTorchThreads(int n) {
  n = std::max(1, n);
  torch::set_num_threads(n);
  SetBlasThreads(n);
}

std::vector<std::string> Learner::Models() { return {"cnn", "mlp", "logreg", "irbnet", "irbnet_hs", "torchscript"}; }

Result<std::unique_ptr<Learner>> Learner::Create(const std::string& model, uint64_t seed) {
  ModelSpec spec;
  spec.name = model;
  return Create(spec, seed);
}

Result<std::unique_ptr<Learner>> Learner::Create(const ModelSpec& spec, uint64_t seed) {
  if (spec.name == "irbnet" || spec.name == "irbnet_hs") return CreateIrbLearner(spec, seed);
  if (spec.name == "torchscript") return CreateTorchScriptLearner(spec);
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

size_t Learner::TrainedValues() const {
  size_t n = 0;
  for (const auto& p : impl_->trainable) n += static_cast<size_t>(p.numel());
  return n;
}
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

Status SaveModelFile(const std::string& path, const std::function<void(const std::string& tmp)>& write) {
  try {
    write(path + ".tmp");  // replaced whole or not at all: a reader never sees half a model
  } catch (const std::exception& e) {
    std::remove((path + ".tmp").c_str());
    return Status::IoError("cannot write model to " + path + ": " + TorchMessage(e));
  }
  if (std::rename((path + ".tmp").c_str(), path.c_str()) != 0) {
    std::remove((path + ".tmp").c_str());
    return Status::IoError("cannot write model to " + path + ": rename failed");
  }
  return Status::Ok();
}

Status SaveModule(const torch::nn::Module& m, const std::string& path) {
  return SaveModelFile(path, [&m](const std::string& tmp) {
    torch::serialize::OutputArchive archive;
    m.save(archive);
    archive.save_to(tmp);
  });
}

ParamSet Learner::GetParams() const { return StateToParams(impl_->state, impl_->specs); }

Status Learner::SetParams(const ParamSet& p) { return ParamsToState(p, impl_->specs, &impl_->state); }

namespace {

std::string ShapeText(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

Result<std::unique_ptr<torch::optim::Optimizer>> MakeOptimizer(const std::vector<torch::Tensor>& params, const TrainOptions& opt) {
  if (opt.optimizer == "sgd")
    return std::unique_ptr<torch::optim::Optimizer>(std::make_unique<torch::optim::SGD>(
        params, torch::optim::SGDOptions(opt.learning_rate).momentum(opt.momentum).weight_decay(opt.weight_decay)));
  if (opt.optimizer == "adam")
    return std::unique_ptr<torch::optim::Optimizer>(std::make_unique<torch::optim::Adam>(
        params, torch::optim::AdamOptions(opt.learning_rate).weight_decay(opt.weight_decay)));
  return Status::InvalidArgument("training.optimizer = '" + opt.optimizer + "' is unknown; allowed: sgd, adam");
}

}  // namespace

Result<TrainStats> Learner::Train(const Dataset& data, const std::vector<uint32_t>& indices, const TrainOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  TrainStats st;
  st.samples = indices.size();
  if (indices.empty() || opt.epochs <= 0) return st;
  if (opt.gradient_correction && opt.gradient_correction->size() < TrainedValues())
    return Status::InvalidArgument("gradient correction has " + std::to_string(opt.gradient_correction->size()) +
                                   " values; the model trains " + std::to_string(TrainedValues()));
  EDGEBED_ASSIGN_OR_RETURN(auto optimiser, MakeOptimizer(impl_->trainable, opt));
  impl_->set_mode(true);
  const int64_t live_before = CountedLiveBytes();
  ResetCountedPeak();
  Rng rng = MakeRng(opt.seed, "batch-order");
  std::vector<uint32_t> order = indices;
  const size_t bs = static_cast<size_t>(std::max(1, opt.batch_size));
  const size_t batches_per_epoch = (order.size() + bs - 1) / bs;
  const size_t total_batches = batches_per_epoch * static_cast<size_t>(opt.epochs);
  size_t done = 0;
  double loss_sum = 0.0;
  size_t loss_count = 0;
  torch::Tensor x, y;
  std::vector<torch::Tensor> start;  // FedProx: the weights training began from
  if (opt.proximal_mu > 0.0f)
    for (const auto& p : impl_->trainable) start.push_back(p.detach().clone());
  try {
    for (int e = 0; e < opt.epochs; ++e) {
      std::shuffle(order.begin(), order.end(), rng);
      for (size_t b = 0; b < order.size(); b += bs) {
        const size_t n = std::min(bs, order.size() - b);
        MakeBatch(data, order.data() + b, n, &x, &y);
        optimiser->zero_grad();
        const int64_t at_batch = CountedLiveBytes();
        auto loss = impl_->loss(impl_->forward(x), y);
        st.kept_for_backward_bytes = std::max(st.kept_for_backward_bytes, CountedLiveBytes() - at_batch);
        const double value = loss.item<double>();
        if (!std::isfinite(value))
          return Status::Failed("model '" + impl_->name + "': the training loss is " + std::to_string(value) +
                                         " at batch " + std::to_string(done + 1) + " (learning rate " +
                                         std::to_string(opt.learning_rate) + " too high, or bad data)");
        loss.backward();
        if (opt.gradient_correction) {
          torch::NoGradGuard no_grad;
          int64_t at = 0;
          for (auto& p : impl_->trainable) {
            auto& g = p.mutable_grad();
            if (g.defined())
              g.add_(torch::from_blob(const_cast<float*>(opt.gradient_correction->data()) + at, p.sizes(), torch::kFloat32));
            at += p.numel();
          }
        }
        if (!start.empty()) {
          torch::NoGradGuard no_grad;
          for (size_t i = 0; i < start.size(); ++i) {
            auto& g = impl_->trainable[i].mutable_grad();
            if (g.defined()) g.add_(impl_->trainable[i].detach() - start[i], opt.proximal_mu);
          }
        }
        optimiser->step();
        loss_sum += value * static_cast<double>(n);
        loss_count += n;
        ++done;
        if (opt.on_progress && !opt.on_progress(static_cast<float>(done) / total_batches)) {
          e = opt.epochs;
          break;
        }
      }
    }
  } catch (const std::exception& e) {
    return Status::Failed("model '" + impl_->name + "' failed in training on a batch of shape " + ShapeText(x) + ": " +
                            TorchMessage(e));
  }
  st.mean_loss = loss_count ? loss_sum / static_cast<double>(loss_count) : 0.0;
  st.steps = done;
  if (CountingAllocatorInstalled()) st.peak_train_bytes = std::max<int64_t>(0, CountedPeakBytes() - live_before);
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return st;
}

Result<EvalStats> Learner::Evaluate(const Dataset& data, const std::vector<uint32_t>* indices) const {
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
  constexpr size_t kBatch = 100;
  double loss_sum = 0.0;
  int64_t correct = 0;
  torch::Tensor x, y;
  try {
    for (size_t b = 0; b < indices->size(); b += kBatch) {
      const size_t n = std::min(kBatch, indices->size() - b);
      MakeBatch(data, indices->data() + b, n, &x, &y);
      auto out = impl_->forward(x);
      loss_sum += impl_->loss(out, y).item<double>() * static_cast<double>(n);
      if (!data.regression()) correct += out.argmax(1).eq(y).sum().item<int64_t>();
    }
  } catch (const std::exception& e) {
    return Status::Failed("model '" + impl_->name + "' failed in evaluation on a batch of shape " + ShapeText(x) + ": " +
                            TorchMessage(e));
  }
  st.samples = indices->size();
  if (st.samples) {
    st.loss = loss_sum / static_cast<double>(st.samples);
    st.accuracy = static_cast<double>(correct) / static_cast<double>(st.samples);
  }
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return st;
}

Status Learner::Check(const Dataset& data) {
  const std::string who = "model '" + impl_->name + "'" + (impl_->source.empty() ? "" : " (" + impl_->source + ")");
  if (data.size() == 0) return Status::InvalidArgument(who + ": no data to check it on");
  std::vector<uint32_t> idx(std::min<size_t>(8, data.size()));
  std::iota(idx.begin(), idx.end(), 0u);
  torch::Tensor x, y, out;
  MakeBatch(data, idx.data(), idx.size(), &x, &y);
  const int64_t n = static_cast<int64_t>(idx.size());
  impl_->set_mode(false);  // no batch-norm statistics move, no dropout
  try {
    out = impl_->forward(x);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(who + ": forward fails on input x of shape " + ShapeText(x) + ": " + TorchMessage(e));
  }
  if (data.regression()) {
    if (out.dim() != 2 || out.size(0) != n || out.size(1) != data.target_dim)
      return Status::InvalidArgument(who + ": output has shape " + ShapeText(out) + "; the targets need [" + std::to_string(n) +
                                     ", " + std::to_string(data.target_dim) + "] (batch, target values)");
  } else if (out.dim() != 2 || out.size(0) != n || out.size(1) < data.num_classes ||
             (impl_->exact_outputs && out.size(1) != data.num_classes)) {
    return Status::InvalidArgument(who + ": output has shape " + ShapeText(out) + "; the data's " + std::to_string(data.num_classes) +
                                   " classes need [" + std::to_string(n) + ", " + std::to_string(data.num_classes) + "] (batch, class scores)");
  }
  try {
    auto loss = impl_->loss(out, y);
    if (loss.numel() != 1) return Status::InvalidArgument(who + ": the loss has shape " + ShapeText(loss) + "; a scalar is needed");
    if (!std::isfinite(loss.item<double>())) return Status::InvalidArgument(who + ": the loss on the first batch is not finite");
    loss.backward();
  } catch (const std::exception& e) {
    return Status::InvalidArgument(who + ": loss or backward fails (output " + ShapeText(out) + ", target " + ShapeText(y) +
                                   "): " + TorchMessage(e));
  }
  for (auto& t : impl_->trainable) t.mutable_grad() = torch::Tensor();
  if (impl_->measure_forward_flops && !impl_->flops_given) {
    try {
      impl_->forward_flops = impl_->measure_forward_flops(x.narrow(0, 0, 1));
    } catch (const std::exception&) {
      impl_->forward_flops = 0;  // a module that cannot be frozen: the caller warns, model.train_flops gives it
    }
    impl_->train_flops = 3 * impl_->forward_flops;
  }
  return Status::Ok();
}

Status Learner::Save(const std::string& path) const { return impl_->save(path); }

}  // namespace edgebed
