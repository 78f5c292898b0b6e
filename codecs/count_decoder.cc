// AMP-DA and AMP-DA-Net in libtorch. The only libtorch translation unit of codecs/.
//
// Choices where the papers are silent (edgebed's):
// - AMP-DA: the count prior is one distribution over {0..k_max} shared by every entry of a chunk of
//   blocks (1024), EM-updated each iteration as the mean posterior; it starts as P(0) = 1 - a with a
//   from the received energy and P(m) ~ 2^-m. tau^2 = ||z||^2 / d per block (the effective noise of
//   the pseudo-data, which also carries the noise-variance estimate). Damping keeps 0.3 of the old x.
// - AMP-DA-Net layer t: R = X + g_t Z C^T (residual-correction scale g_t); prior per codeword
//   Poisson(lambda_i = K pi_i) truncated at k_max; posterior with inverse-variance scale kappa_t and
//   temperature T_t; the CNN (3 conv1d, kernel 3, over the popularity-sorted codeword axis; inputs R,
//   posterior mean, variance, log lambda) adds gate_t * its output to the posterior mean (the gate
//   starts at 0, i.e. plain AMP); damping beta_t; then K and pi move towards the estimate's sum and
//   shape with learned step sizes eta_K,t, eta_pi,t. Codebook C = rownorm(C0 W), W starting at I.
// - Training loss: ||X - x||^2 + 0.01 (sum X - K_a)^2 + 0.01 (K - K_a)^2 + 0.001 ||W^T W - I||^2;
//   Adam; SNR uniform per batch; K_a uniform per draw; the last fifth of the rounds held out.
//
// Both decoders work on all blocks of a round at once: Y (S x d), the estimate X (S x n) and the
// residual Z (S x d) are matrices, the linear steps are two GEMMs per iteration (X C and Z C^T), and
// the denoiser is a batched posterior over the count support {0..M} (S x n x (M+1)). FLOPs are
// counted as: 2 m k n per GEMM; one per elementwise arithmetic operation (exp included) on the
// S x n x (M+1) posterior tensors (12 per entry); 2 per multiply-add of the CNN's convolutions.
#include "codecs/count_decoder.h"
#include "codecs/count_kernel.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <mutex>
#include <numeric>

namespace edgebed {
namespace {
using torch::Tensor;
using Clock = std::chrono::steady_clock;

Tensor Borrow(const float* p, std::vector<int64_t> shape) {
  return torch::from_blob(const_cast<float*>(p), shape, torch::kFloat);
}

std::vector<float> ToVec(const Tensor& t) {
  Tensor c = t.detach().contiguous().to(torch::kFloat);
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

// Initial K per block from the received energy: ||y||^2 ~ ||x C||^2 + d noise_var >= K for unit-norm
// codewords (collisions raise it), bounded by k_max.
Tensor InitialK(const Tensor& Y, double noise_var, uint32_t k_max) {
  return (Y.square().sum(1) - static_cast<double>(Y.size(1)) * noise_var).clamp(1.0, static_cast<double>(k_max));
}

struct Post {
  Tensor mean, var, post;
};

// Posterior mean and variance of x in {0..M} given r = x + N(0, 1 / (2 scale)) and a log prior
// (broadcastable to S x n x (M+1)), at temperature `temp`.
Post DiscretePosterior(const Tensor& R, const Tensor& scale, const Tensor& logprior, const Tensor& mvals,
                       const Tensor& temp = Tensor()) {
  Tensor logits;
  if (torch::GradMode::is_enabled()) {
    logits = logprior - (R.unsqueeze(-1) - mvals).square() * scale.unsqueeze(-1);
    if (temp.defined()) logits = logits / temp;
  } else {  // in place: the S x n x (M+1) tensors are the decoder's memory traffic
    logits = R.unsqueeze(-1) - mvals;
    logits.square_().mul_(-scale.unsqueeze(-1)).add_(logprior);
    if (temp.defined()) logits.div_(temp);
  }
  Post p;
  p.post = torch::softmax(logits, -1);
  p.mean = p.post.matmul(mvals);
  p.var = (p.post.matmul(mvals.square()) - p.mean.square()).clamp_min(0.0);
  return p;
}

// The fused kernel on R (S x n), threaded over rows: mean and variance, and the posterior mass of
// each support point summed over all entries when `post_sum` is given.
Post FusedPosterior(const Tensor& R, const Tensor& scale, int64_t m1, const Tensor& log_prior, const Tensor& log_lambda,
                    float inv_temp, std::vector<double>* post_sum) {
  const Tensor Rc = R.contiguous(), sc = scale.reshape({-1}).contiguous();
  const Tensor lp = log_prior.defined() ? log_prior.contiguous() : Tensor();
  const Tensor ll = log_lambda.defined() ? log_lambda.contiguous() : Tensor();
  Post p;
  p.mean = torch::empty_like(Rc);
  p.var = torch::empty_like(Rc);
  const int64_t rows = Rc.size(0), n = Rc.size(1);
  const int64_t grain = std::max<int64_t>(16, rows / (2 * at::get_num_threads()) + 1);
  std::vector<std::vector<double>> parts;
  std::mutex mu;
  at::parallel_for(0, rows, grain, [&](int64_t lo, int64_t hi) {
    CountPosteriorArgs a;
    a.r = Rc.data_ptr<float>() + lo * n;
    a.scale = sc.data_ptr<float>() + lo;
    a.rows = hi - lo;
    a.n = n;
    a.m1 = static_cast<int>(m1);
    a.log_prior = lp.defined() ? lp.data_ptr<float>() : nullptr;
    a.log_lambda = ll.defined() ? ll.data_ptr<float>() + lo * n : nullptr;
    a.inv_temperature = inv_temp;
    a.mean = p.mean.data_ptr<float>() + lo * n;
    a.var = p.var.data_ptr<float>() + lo * n;
    std::vector<double> acc(post_sum ? m1 : 0, 0.0);
    a.post_sum = post_sum ? acc.data() : nullptr;
    CountPosterior(a);
    if (post_sum) {
      std::lock_guard<std::mutex> lock(mu);
      parts.push_back(std::move(acc));
    }
  });
  if (post_sum) {
    post_sum->assign(m1, 0.0);
    for (const auto& part : parts)
      for (int64_t m = 0; m < m1; ++m) (*post_sum)[m] += part[m];
  }
  return p;
}

double PosteriorFlops(int64_t S, int64_t n, int64_t M1) { return 12.0 * static_cast<double>(S * n * M1); }
double GemmFlops(int64_t m, int64_t k, int64_t n) { return 2.0 * static_cast<double>(m) * k * n; }

// Post-processing shared by both decoders: K_hat = the mode of the rounded per-block sums; per block
// the K_hat largest entries, a least-squares refit of y on their codewords, greedy rounding to K_hat.
void PostProcess(const Tensor& X, const Tensor& Y, const Tensor& C, uint32_t k_max, CountEstimate* out) {
  const int64_t S = X.size(0), n = X.size(1), d = C.size(1);
  Tensor sums = X.clamp_min(0.0).sum(1).round().clamp(1.0, static_cast<double>(std::max<uint32_t>(1, k_max)));
  std::map<int64_t, int64_t> votes;
  auto sa = sums.accessor<float, 1>();
  for (int64_t s = 0; s < S; ++s) ++votes[static_cast<int64_t>(sa[s])];
  int64_t K = 1, best = -1;
  for (const auto& [k, v] : votes)
    if (v > best) best = v, K = k;
  out->k_hat = static_cast<uint32_t>(K);
  K = std::min<int64_t>(K, std::min<int64_t>(n, d));
  Tensor top = std::get<1>(X.topk(K, 1));                                  // S x K
  Tensor A = C.index_select(0, top.flatten()).view({S, K, d});       // S x K x d
  Tensor G = A.bmm(A.transpose(1, 2)) + 1e-5 * torch::eye(K).unsqueeze(0);
  Tensor sol = torch::linalg::solve(G, A.bmm(Y.unsqueeze(2)), true).squeeze(2);  // S x K
  out->flops += GemmFlops(S * K, d, K) + GemmFlops(S * K, d, 1) + static_cast<double>(S) * K * K * K;
  out->counts.assign(static_cast<size_t>(S * n), 0);
  auto ta = top.accessor<int64_t, 2>();
  Tensor solc = sol.contiguous();
  auto va = solc.accessor<float, 2>();
  std::vector<int32_t> c(K);
  for (int64_t s = 0; s < S; ++s) {
    int64_t total = 0;
    for (int64_t j = 0; j < K; ++j) {
      c[j] = static_cast<int32_t>(std::lround(std::max(0.0f, va[s][j])));
      total += c[j];
    }
    while (total != K) {  // greedy: move the entry whose rounding is furthest from its value
      int64_t pick = -1;
      float gap = 0.0f;
      for (int64_t j = 0; j < K; ++j) {
        const float g = va[s][j] - static_cast<float>(c[j]);
        if (total < K ? (pick < 0 || g > gap) : (c[j] > 0 && (pick < 0 || g < gap))) pick = j, gap = g;
      }
      c[pick] += total < K ? 1 : -1;
      total += total < K ? 1 : -1;
    }
    for (int64_t j = 0; j < K; ++j) out->counts[static_cast<size_t>(s * n + ta[s][j])] += c[j];
  }
}

// ---- AMP-DA ----------------------------------------------------------------------------------
class AmpDa final : public CountDecoder {
 public:
  AmpDa(uint32_t n, uint32_t d, uint64_t seed, const AmpDaOptions& opt) : CountDecoder(n, d), opt_(opt) {
    Rng rng = MakeRng(seed, "amp-da-codebook");
    codebook_ = RandomUnitCodebook(n, d, rng);
  }
  std::string name() const override { return "amp_da"; }
  Status Save(const std::string& path) const override {
    torch::serialize::OutputArchive a;
    a.write("kind", torch::tensor({0}));
    a.write("codebook", Borrow(codebook_.data(), {n_, d_}).clone());
    a.save_to(path);
    return Status::Ok();
  }

 private:
  Status DoDecode(const CountProblem& p, CountEstimate* out) override {
    torch::NoGradGuard ng;
    const Tensor C = Borrow(codebook_.data(), {n_, d_});
    const Tensor Y = Borrow(p.y, {static_cast<int64_t>(p.blocks), d_});
    const int64_t M = std::max<uint32_t>(1, p.k_max);
    const Tensor mvals = torch::arange(M + 1, torch::kFloat);
    std::vector<Tensor> parts;
    int iters_max = 0;
    for (int64_t lo = 0; lo < static_cast<int64_t>(p.blocks); lo += static_cast<int64_t>(opt_.chunk_blocks)) {
      const int64_t hi = std::min<int64_t>(static_cast<int64_t>(p.blocks), lo + static_cast<int64_t>(opt_.chunk_blocks));
      int iters = 0;
      parts.push_back(DecodeChunk(Y.slice(0, lo, hi), C, mvals, p, &iters, out));
      iters_max = std::max(iters_max, iters);
    }
    Tensor X = torch::cat(parts, 0);
    out->iterations = iters_max;
    out->raw = ToVec(X);
    PostProcess(X, Y, C, p.k_max, out);
    return Status::Ok();
  }

  Tensor DecodeChunk(const Tensor& Y, const Tensor& C, const Tensor& mvals, const CountProblem& p, int* iters,
                     CountEstimate* out) {
    const int64_t B = Y.size(0), n = n_, d = d_, M1 = mvals.size(0);
    const Tensor Ct = C.t().contiguous();
    // Prior over counts: P(0) = 1 - a, P(m) = a (1/2)^(m-1) / norm for m >= 1; a from the energy estimate.
    const double a = std::clamp(InitialK(Y, p.noise_var, p.k_max).mean().item<double>() / static_cast<double>(n), 1e-3, 0.5);
    Tensor prior = torch::pow(0.5, mvals - 1.0);
    prior[0] = 0.0;
    prior = prior / prior.sum() * a;
    prior[0] = 1.0 - a;
    Tensor X = torch::zeros({B, n});
    Tensor Z = Y.clone();
    const double damp = opt_.damping;
    for (uint32_t t = 0; t < opt_.iterations; ++t) {
      const Tensor tau2 = Z.square().sum(1, true).div_(static_cast<double>(d)).clamp_min_(1e-9);
      const Tensor R = torch::addmm(X, Z, Ct);  // X + Z C^T
      std::vector<double> mass;
      const Post post = FusedPosterior(R, 0.5 / tau2, M1, prior.clamp_min(1e-12).log(), Tensor(), 1.0f, &mass);
      const double change = (post.mean - X).square().mean().item<double>();
      X = X * damp + post.mean * (1.0 - damp);
      const Tensor onsager = post.var.sum(1, true) / (tau2 * static_cast<double>(d));
      Z = torch::addmm(Y + onsager * Z, X, C, 1.0, -1.0);  // Y - X C + onsager Z
      // EM: the prior is the average posterior over all entries of the chunk.
      for (int64_t m = 0; m < M1; ++m) prior[m] = mass[m] / static_cast<double>(B * n);
      out->flops += 2 * GemmFlops(B, d, n) + PosteriorFlops(B, n, M1) + static_cast<double>(B * n * M1);
      *iters = static_cast<int>(t + 1);
      if (change < opt_.tolerance) break;
    }
    return X;
  }

  AmpDaOptions opt_;
};

// ---- AMP-DA-Net ------------------------------------------------------------------------------
struct NetImpl : torch::nn::Module {
  explicit NetImpl(const AmpDaNetOptions& o) : opt(o) {
    const int64_t T = o.layers, n = o.n, d = o.d, F = o.filters;
    Rng rng = MakeRng(o.seed, "amp-da-net-c0");
    const std::vector<float> c0 = RandomUnitCodebook(o.n, o.d, rng);
    C0 = register_buffer("C0", Borrow(c0.data(), {n, d}).clone());
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
    PostProcess(X, Y, C, p.k_max, out);
    return Status::Ok();
  }

  Net net_;
};

}  // namespace

Result<CountEstimate> CountDecoder::Decode(const CountProblem& p) {
  if (!p.y || p.blocks == 0) return Status::InvalidArgument("decode: no block received");
  if (p.k_max == 0) return Status::InvalidArgument("decode: k_max must be >= 1 (the number of nodes that may transmit)");
  if (!(p.noise_var >= 0.0) || !std::isfinite(p.noise_var))
    return Status::InvalidArgument("decode: noise_var must be finite and >= 0");
  for (size_t i = 0; i < p.blocks * d_; ++i)
    if (!std::isfinite(p.y[i])) return Status::InvalidArgument("decode: the received signal holds a non-finite value");
  CountEstimate out;
  const auto t0 = Clock::now();
  try {
    EDGEBED_RETURN_IF_ERROR(DoDecode(p, &out));
  } catch (const c10::Error& e) {
    return Status::Corruption(std::string("decode: ") + e.what_without_backtrace());
  }
  out.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return out;
}

std::vector<float> RandomUnitCodebook(uint32_t n, uint32_t d, Rng& rng) {
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> c(static_cast<size_t>(n) * d);
  for (uint32_t i = 0; i < n; ++i) {
    double norm = 0.0;
    for (uint32_t j = 0; j < d; ++j) {
      const float v = g(rng);
      c[static_cast<size_t>(i) * d + j] = v;
      norm += static_cast<double>(v) * v;
    }
    const float inv = static_cast<float>(1.0 / std::sqrt(norm));
    for (uint32_t j = 0; j < d; ++j) c[static_cast<size_t>(i) * d + j] *= inv;
  }
  return c;
}

std::unique_ptr<CountDecoder> MakeAmpDa(uint32_t n, uint32_t d, uint64_t seed, const AmpDaOptions& opt) {
  return std::unique_ptr<CountDecoder>(new AmpDa(n, d, seed, opt));
}

// The source tree's decoder when edgebed runs from its build folder, else the installed package's.
std::string DefaultDecoderPath() {
  const std::string built = std::string(EDGEBED_SOURCE_DIR) + "/codecs/decoders/amp_da_net.pt";
  if (std::ifstream(built).good()) return built;
  return "/usr/share/edgebed/decoders/amp_da_net.pt";
}

double UraNoiseVar(uint32_t d, double snr_db) { return 1.0 / (static_cast<double>(d) * std::pow(10.0, snr_db / 10.0)); }

std::vector<float> SuperposeCounts(const std::vector<float>& codebook, uint32_t n, uint32_t d,
                                   const std::vector<float>& counts, double noise_var, Rng& rng) {
  torch::NoGradGuard ng;
  const int64_t B = static_cast<int64_t>(counts.size() / n);
  Tensor y = Borrow(counts.data(), {B, n}).mm(Borrow(codebook.data(), {n, d}));
  std::vector<float> out = ToVec(y);
  std::normal_distribution<float> g(0.0f, static_cast<float>(std::sqrt(noise_var)));
  if (noise_var > 0)
    for (float& v : out) v += g(rng);
  return out;
}

double PosteriorPathsMaxDiff(uint64_t seed) {
  torch::manual_seed(seed);
  const int64_t S = 64, n = 128, M1 = 11;
  const Tensor mvals = torch::arange(M1, torch::kFloat);
  const Tensor R = torch::rand({S, n}) * 13.0 - 1.0;
  const Tensor scale = torch::rand({S, 1}) * 50.0 + 0.5;
  const Tensor prior = torch::softmax(torch::randn({M1}), 0).log();
  const Tensor loglam = torch::randn({S, n});
  const Tensor temp = torch::full({}, 1.7);
  double worst = 0.0;
  for (bool poisson : {false, true}) {
    Post a, b;
    {
      torch::AutoGradMode grad(true);
      const Tensor lp = poisson ? loglam.unsqueeze(-1) * mvals - loglam.exp().unsqueeze(-1) - torch::lgamma(mvals + 1.0) : prior;
      a = DiscretePosterior(R, scale, lp, mvals, temp);
    }
    {
      torch::NoGradGuard ng;
      b = FusedPosterior(R, scale, M1, poisson ? Tensor() : prior, poisson ? loglam : Tensor(), 1.0f / 1.7f, nullptr);
    }
    worst = std::max({worst, (a.mean - b.mean).abs().max().item<double>(), (a.var - b.var).abs().max().item<double>()});
  }
  return worst;
}

double DenseMatmulGflops(int64_t m, int64_t k, int64_t n, int reps) {
  torch::NoGradGuard ng;
  Tensor a = torch::randn({m, k}), b = torch::randn({k, n}), c = torch::empty({m, n});
  torch::mm_out(c, a, b);  // warm up
  double best = 0.0;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    torch::mm_out(c, a, b);
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, GemmFlops(m, k, n) / s / 1e9);
  }
  return best;
}

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
  torch::manual_seed(opt.seed);
  Net net(opt.net);
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
  auto receive = [](const Tensor& signal, const Tensor& unit_noise, double snr_db) {
    const Tensor sd = (signal.square().mean(1, true) / std::pow(10.0, snr_db / 10.0)).sqrt().detach();
    return std::make_pair(signal + sd * unit_noise, sd.square().mean().item<double>());
  };
  // Validation batch at 5 dB, fixed.
  Rng vrng = MakeRng(opt.seed, "amp-da-net-val");
  const CountBatch vb = SampleCounts(data, val_r, 512, opt.ka_min, opt.ka_max, vrng);
  auto [vX, vP, vN] = make(vb, vrng);

  torch::optim::Adam adam(net->parameters(), torch::optim::AdamOptions(opt.learning_rate));
  const auto t0 = Clock::now();
  std::uniform_real_distribution<double> snr(opt.snr_min_db, opt.snr_max_db);
  double loss_avg = 0.0;
  for (uint32_t step = 1; step <= opt.steps; ++step) {
    const double snr_db = snr(rng);
    const CountBatch b = SampleCounts(data, train_r, opt.batch, opt.ka_min, opt.ka_max, rng);
    auto [X, P, N] = make(b, rng);
    const Tensor C = net->Codebook();
    const auto [Y, noise_var] = receive(X.mm(C), N, snr_db);
    auto [Xh, Kh] = net->Forward(Y, P, noise_var, opt.ka_max, C, nullptr);
    std::vector<float> kav(b.ka.begin(), b.ka.end());
    const Tensor Ka = Borrow(kav.data(), {static_cast<int64_t>(kav.size())});
    const Tensor WtW = net->W.t().mm(net->W);
    const Tensor loss = (Xh - X).square().sum(1).mean() + 1e-2 * (Xh.sum(1) - Ka).square().mean() +
                        1e-2 * (Kh - Ka).square().mean() + 1e-3 * (WtW - torch::eye(d)).square().sum();
    adam.zero_grad();
    loss.backward();
    torch::nn::utils::clip_grad_norm_(net->parameters(), 5.0);
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
