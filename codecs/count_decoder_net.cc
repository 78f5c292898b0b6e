// AMP-DA-Net (the learned count decoder) in libtorch: the unrolled network, its decoder, training
// and loading. The design choices where the paper is silent are listed at the top of count_decoder.cc.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <numeric>

#include "codecs/amp_kernels.h"
#include "codecs/count_decoder.h"
#include "codecs/codebook_design.h"

namespace edgebed {
namespace {
using namespace amp;
using Clock = std::chrono::steady_clock;

// ---- AMP-DA-Net ------------------------------------------------------------------------------
// C0 of a fresh decoder with options `o` (also put under an --init decoder when it asks for a new
// code), n x d. Callers validate o.code first.
Tensor InitialC0(const AmpDaNetOptions& o) {
  Rng rng = MakeRng(o.seed, "amp-da-net-c0");
  const std::vector<float> c0 = DesignedCodebook(o.n, o.d, o.code, rng).value();
  return Borrow(c0.data(), {static_cast<int64_t>(o.n), static_cast<int64_t>(o.d)}).clone();
}

struct NetImpl : torch::nn::Module {
  explicit NetImpl(const AmpDaNetOptions& o) : opt(o) {
    const int64_t T = o.layers, d = o.d, F = o.filters;
    C0 = register_buffer("C0", InitialC0(o));
    W = register_parameter("W", torch::eye(d));
    damp = register_parameter("damp", torch::full({T}, std::log(0.3 / 0.7)));  // sigmoid -> 0.3
    resid = register_parameter("resid", torch::ones({T}));
    invvar = register_parameter("invvar", torch::full({T}, std::log(std::exp(1.0) - 1.0)));  // softplus -> 1
    temp = register_parameter("temp", torch::full({T}, std::log(std::exp(1.0) - 1.0)));
    gate = register_parameter("gate", torch::zeros({T}));
    eta_k = register_parameter("eta_k", torch::full({T}, 0.5));
    eta_pi = register_parameter("eta_pi", torch::full({T}, 0.1));
    c1 = register_module("c1", torch::nn::Conv1d(torch::nn::Conv1dOptions(4, F, 3).padding(1)));
    c2 = register_module("c2", torch::nn::Conv1d(torch::nn::Conv1dOptions(F, F, 3).padding(1)));
    c3 = register_module("c3", torch::nn::Conv1d(torch::nn::Conv1dOptions(F, 1, 3).padding(1)));
    config = register_buffer("config", torch::tensor(std::vector<int64_t>{o.n, o.d, o.layers, o.filters}, torch::kLong));
  }

  Tensor Codebook() {
    Tensor C = C0.mm(W);
    return C / C.norm(2, 1, true);
  }

  // X (S x n) and K (S) after T layers; flops accumulated when given.
  std::pair<Tensor, Tensor> Forward(const Tensor& Y, const Tensor& pop, double noise_var, uint32_t k_max,
                                    const Tensor& C, double* flops) {
    const int64_t S = Y.size(0), n = opt.n, d = opt.d, F = opt.filters, M1 = std::max<uint32_t>(1, k_max) + 1;
    const Tensor mvals = torch::arange(M1, torch::kFloat);
    const Tensor logfact = torch::lgamma(mvals + 1.0);
    const Tensor Ct = C.t();
    Tensor K = InitialK(Y, noise_var, k_max);
    Tensor pi = pop / pop.sum(1, true).clamp_min(1e-12);
    Tensor X = torch::zeros({S, n});
    Tensor Z = Y;
    for (uint32_t t = 0; t < opt.layers; ++t) {
      const Tensor tau2 = (Z.square().sum(1, true) / static_cast<double>(d)).clamp_min(1e-9);
      const Tensor kappa = torch::softplus(invvar[t]);
      const Tensor R = X + resid[t] * Z.mm(Ct);
      const Tensor lam = (K.unsqueeze(1) * pi).clamp_min(1e-4);  // Poisson prior of each codeword's count
      const Tensor logprior =
          torch::GradMode::is_enabled() ? lam.log().unsqueeze(-1) * mvals - lam.unsqueeze(-1) - logfact : Tensor();
      const Tensor tmp = torch::softplus(temp[t]) + 1e-3;
      const Post post = torch::GradMode::is_enabled()
                            ? DiscretePosterior(R, kappa * 0.5 / tau2, logprior, mvals, tmp)
                            : FusedPosterior(R, kappa * 0.5 / tau2, M1, Tensor(), lam.log(), 1.0f / tmp.item<float>(), nullptr);
      const Tensor feat = torch::stack({R, post.mean, post.var, lam.log()}, 1);  // S x 4 x n
      const Tensor delta = c3(torch::relu(c2(torch::relu(c1(feat))))).squeeze(1);
      const Tensor xnew = torch::relu(post.mean + gate[t] * delta);
      const Tensor beta = torch::sigmoid(damp[t]);
      X = beta * X + (1.0 - beta) * xnew;
      const Tensor onsager = kappa * post.var.sum(1, true) / (tau2 * static_cast<double>(d));
      Z = Y - X.mm(C) + onsager * Z;
      K = (K + eta_k[t] * (X.sum(1) - K)).clamp(1.0, static_cast<double>(std::max<uint32_t>(1, k_max)));
      pi = torch::relu(pi + eta_pi[t] * (X / K.unsqueeze(1) - pi));
      pi = pi / pi.sum(1, true).clamp_min(1e-12);
      if (flops)
        *flops += 2 * GemmFlops(S, d, n) + PosteriorFlops(S, n, M1) + 6.0 * static_cast<double>(S * n * M1) +
                  2.0 * static_cast<double>(S * n) * 3.0 * (4.0 * F + F * F + F);
    }
    return {X, K};
  }

  AmpDaNetOptions opt;
  Tensor C0, W, damp, resid, invvar, temp, gate, eta_k, eta_pi, config;
  torch::nn::Conv1d c1{nullptr}, c2{nullptr}, c3{nullptr};
};
TORCH_MODULE(Net);

class AmpDaNet final : public CountDecoder {
 public:
  explicit AmpDaNet(Net net) : CountDecoder(net->opt.n, net->opt.d), net_(std::move(net)) { Refresh(); }
  std::string name() const override { return "amp_da_net"; }
  // The learned codebook, recomputed from the (loaded or trained) C0 and W: never a stale copy.
  void Refresh() {
    torch::NoGradGuard ng;
    codebook_ = ToVec(net_->Codebook());
  }
  Status Save(const std::string& path) const override {
    torch::serialize::OutputArchive a;
    net_->save(a);
    try {
      a.save_to(path);
    } catch (const c10::Error& e) {
      return Status::IoError("cannot save the decoder to " + path + ": " + e.what_without_backtrace());
    }
    return Status::Ok();
  }
  Net& net() { return net_; }

 private:
  Status DoDecode(const CountProblem& p, CountEstimate* out) override {
    torch::NoGradGuard ng;
    net_->eval();
    const Tensor C = Borrow(codebook_.data(), {n_, d_});
    const Tensor Y = Borrow(p.y, {static_cast<int64_t>(p.blocks), d_});
    Tensor pop = p.popularity ? torch::from_blob(const_cast<double*>(p.popularity), {1, n_}, torch::kDouble).to(torch::kFloat)
                              : torch::full({1, n_}, 1.0 / n_);
    std::vector<Tensor> parts;
    constexpr int64_t kChunk = 2048;
    for (int64_t lo = 0; lo < static_cast<int64_t>(p.blocks); lo += kChunk) {
      const int64_t hi = std::min<int64_t>(static_cast<int64_t>(p.blocks), lo + kChunk);
      parts.push_back(net_->Forward(Y.slice(0, lo, hi), pop.expand({hi - lo, n_}), p.noise_var, p.k_max, C, &out->flops).first);
    }
    Tensor X = torch::cat(parts, 0);
    out->iterations = static_cast<int>(net_->opt.layers);
    out->raw = ToVec(X);
    PostProcess(X, Y, C, p, out);
    return Status::Ok();
  }

  Net net_;
};

}  // namespace

namespace {
// NMSE sum ||x_hat - x||^2 / sum ||x||^2 of a decoder on a fixed validation batch.
double ValidationNmse(Net& net, const Tensor& Y, const Tensor& pop, const Tensor& X, double noise_var, uint32_t k_max) {
  torch::NoGradGuard ng;
  net->eval();
  const Tensor C = net->Codebook();
  const Tensor Xh = net->Forward(Y, pop, noise_var, k_max, C, nullptr).first;
  net->train();
  return ((Xh - X).square().sum() / X.square().sum()).item<double>();
}
}  // namespace

Result<std::unique_ptr<CountDecoder>> TrainAmpDaNet(const CountData& data, const AmpDaNetTrainOptions& opt) {
  if (data.n != opt.net.n)
    return Status::InvalidArgument("the count data has codebook size " + std::to_string(data.n) + ", the decoder " +
                                   std::to_string(opt.net.n));
  if (data.rounds.size() < 2) return Status::InvalidArgument("count data: need at least 2 rounds (train and validation)");
  if (opt.ka_min == 0 || opt.ka_min > opt.ka_max) return Status::InvalidArgument("ka_min must be in [1, ka_max]");
  if (Status s = opt.net.code.Validate(opt.net.n, opt.net.d); !s.ok()) return s;
  if (!(opt.snr_min_db <= opt.snr_max_db))
    return Status::InvalidArgument("snr_min_db (" + std::to_string(opt.snr_min_db) + ") must be <= snr_max_db (" +
                                   std::to_string(opt.snr_max_db) + ")");
  torch::manual_seed(opt.seed);
  Net net(opt.net);
  if (!opt.init_from.empty()) {
    auto init = LoadAmpDaNet(opt.init_from);
    if (!init.ok()) return init.status();
    const auto& o = static_cast<AmpDaNet&>(*init.value()).net()->opt;
    if (o.n != opt.net.n || o.d != opt.net.d || o.layers != opt.net.layers || o.filters != opt.net.filters)
      return Status::InvalidArgument(opt.init_from + " has n " + std::to_string(o.n) + ", d " + std::to_string(o.d) +
                                     ", " + std::to_string(o.layers) + " layers, " + std::to_string(o.filters) +
                                     " filters; training asks for n " + std::to_string(opt.net.n) + ", d " +
                                     std::to_string(opt.net.d) + ", " + std::to_string(opt.net.layers) + " layers, " +
                                     std::to_string(opt.net.filters) + " filters");
    net = static_cast<AmpDaNet&>(*init.value()).net();
    if (opt.net.code.private_dims > 0 || opt.net.code.low_coherence || opt.net.code.pairwise_snr_db) {  // a new code (C0, W = I) under the file's layers and CNN
      torch::NoGradGuard ng;
      net->C0.copy_(InitialC0(opt.net));
      net->W.copy_(torch::eye(opt.net.d));
    }
  }
  std::vector<size_t> train_r, val_r;
  SplitRounds(data, &train_r, &val_r);
  Rng rng = MakeRng(opt.seed, "amp-da-net-train");
  const int64_t n = opt.net.n, d = opt.net.d;
  // SNR as in the paper: the received power of each block's superposed codewords over the noise power,
  // so the noise is scaled per block (row) to that block's signal.
  auto make = [&](const CountBatch& b, Rng& r) {
    const int64_t B = static_cast<int64_t>(b.ka.size());
    Tensor X = Borrow(b.counts.data(), {B, n}).clone();
    Tensor P = Borrow(b.popularity.data(), {B, n}).clone();
    Tensor noise = torch::empty({B, d});
    std::normal_distribution<float> g(0.0f, 1.0f);
    float* np = noise.data_ptr<float>();
    for (int64_t i = 0; i < B * d; ++i) np[i] = g(r);
    return std::make_tuple(X, P, noise);
  };
  auto receive = [&](const Tensor& signal, const Tensor& unit_noise, double snr_db) {
    Tensor sd = (signal.square().mean(1, true) / std::pow(10.0, snr_db / 10.0)).sqrt();
    if (!opt.noise_follows_code) sd = sd.detach();
    return std::make_pair(signal + sd * unit_noise, sd.square().mean().item<double>());
  };
  // Validation batch at 5 dB, fixed.
  Rng vrng = MakeRng(opt.seed, "amp-da-net-val");
  const CountBatch vb = SampleCounts(data, val_r, 512, opt.ka_min, opt.ka_max, vrng);
  auto [vX, vP, vN] = make(vb, vrng);

  std::vector<Tensor> params = net->parameters();
  if (opt.learn_code) {
    net->C0.set_requires_grad(true);
    params.push_back(net->C0);
  }
  torch::optim::Adam adam(params, torch::optim::AdamOptions(opt.learning_rate));
  const auto t0 = Clock::now();
  std::uniform_real_distribution<double> snr(opt.snr_min_db, opt.snr_max_db);
  double loss_avg = 0.0;
  for (uint32_t step = 1; step <= opt.steps; ++step) {
    if (opt.cosine_decay) {  // over the steps or the minutes, whichever runs out first
      const double done = std::min(1.0, std::max(static_cast<double>(step - 1) / std::max<uint32_t>(1, opt.steps),
                                                 std::chrono::duration<double>(Clock::now() - t0).count() / 60.0 / opt.max_minutes));
      const double f = 0.01 + 0.99 * 0.5 * (1.0 + std::cos(M_PI * done));
      for (auto& g : adam.param_groups()) static_cast<torch::optim::AdamOptions&>(g.options()).lr(opt.learning_rate * f);
    }
    const double snr_db = snr(rng);
    const CountBatch b = SampleCounts(data, train_r, opt.batch, opt.ka_min, opt.ka_max, rng);
    auto [X, P, N] = make(b, rng);
    const Tensor C = net->Codebook();
    const auto [Y, noise_var] = receive(X.mm(C), N, snr_db);
    auto [Xh, Kh] = net->Forward(Y, P, noise_var, opt.ka_max, C, nullptr);
    std::vector<float> kav(b.ka.begin(), b.ka.end());
    const Tensor Ka = Borrow(kav.data(), {static_cast<int64_t>(kav.size())});
    const Tensor WtW = net->W.t().mm(net->W);
    const Tensor err = (Xh - X).square().sum(1).mean();
    const Tensor loss = (opt.log_loss ? (err + 1e-6).log() : err) + 1e-2 * (Xh.sum(1) - Ka).square().mean() +
                        1e-2 * (Kh - Ka).square().mean() + 1e-3 * (WtW - torch::eye(d)).square().sum();
    adam.zero_grad();
    loss.backward();
    torch::nn::utils::clip_grad_norm_(params, 5.0);
    adam.step();
    loss_avg = step == 1 ? loss.item<double>() : 0.98 * loss_avg + 0.02 * loss.item<double>();
    const double minutes = std::chrono::duration<double>(Clock::now() - t0).count() / 60.0;
    const bool last = step == opt.steps || minutes >= opt.max_minutes;
    if (opt.on_progress && (step % opt.report_every == 0 || last)) {
      torch::NoGradGuard ng;
      const auto [vY, v_noise] = receive(vX.mm(net->Codebook()), vN, 5.0);
      opt.on_progress(step, loss_avg, ValidationNmse(net, vY, vP, vX, v_noise, opt.ka_max));
    }
    if (last) break;
  }
  net->C0.set_requires_grad(false);
  return std::unique_ptr<CountDecoder>(new AmpDaNet(net));
}

Result<std::unique_ptr<CountDecoder>> LoadAmpDaNet(const std::string& path) {
  try {
    torch::serialize::InputArchive a;
    a.load_from(path);
    Tensor config;
    if (!a.try_read("config", config, /*is_buffer=*/true) || config.numel() != 4)
      return Status::InvalidArgument(path + " is not an AMP-DA-Net decoder (no config buffer)");
    AmpDaNetOptions o;
    o.n = static_cast<uint32_t>(config[0].item<int64_t>());
    o.d = static_cast<uint32_t>(config[1].item<int64_t>());
    o.layers = static_cast<uint32_t>(config[2].item<int64_t>());
    o.filters = static_cast<uint32_t>(config[3].item<int64_t>());
    Net net(o);
    net->load(a);
    return std::unique_ptr<CountDecoder>(new AmpDaNet(net));
  } catch (const c10::Error& e) {
    return Status::InvalidArgument("cannot load the AMP-DA-Net decoder " + path + ": " + e.what_without_backtrace());
  }
}

}  // namespace edgebed
