// AMP-DA in libtorch, the kernels both decoders share (amp_kernels.h), and the decoders' API;
// AMP-DA-Net is in count_decoder_net.cc. codecs/'s two libtorch translation units.
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
#include "codecs/amp_kernels.h"
#include "codecs/count_kernel.h"
#include "codecs/codebook_design.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <mutex>
#include <numeric>

namespace edgebed {
namespace amp {

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

// Posterior mean and variance of x in {0..M} given r = x + N(0, 1 / (2 scale)) and a log prior
// (broadcastable to S x n x (M+1)), at temperature `temp`.
Post DiscretePosterior(const Tensor& R, const Tensor& scale, const Tensor& logprior, const Tensor& mvals,
                       const Tensor& temp) {
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

}  // namespace amp

namespace {
using namespace amp;
using Clock = std::chrono::steady_clock;

// ---- AMP-DA ----------------------------------------------------------------------------------
class AmpDa final : public CountDecoder {
 public:
  AmpDa(uint32_t n, uint32_t d, std::vector<float> codebook, const AmpDaOptions& opt) : CountDecoder(n, d), opt_(opt) {
    codebook_ = std::move(codebook);
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
    PostProcess(X, Y, C, p, out);
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

}  // namespace

Result<CountEstimate> CountDecoder::Decode(const CountProblem& p) {
  if (!p.y || p.blocks == 0) return Status::InvalidArgument("decode: no block received");
  if (p.k_max == 0) return Status::InvalidArgument("decode: k_max must be >= 1 (the number of nodes that may transmit)");
  if (!(p.noise_var >= 0.0) || !std::isfinite(p.noise_var))
    return Status::InvalidArgument("decode: noise_var must be finite and >= 0");
  for (size_t i = 0; i < p.blocks * d_; ++i)
    if (!std::isfinite(p.y[i])) return Status::InvalidArgument("decode: the received signal holds a non-finite value");
  if (p.start_counts) {
    const int64_t k = std::accumulate(p.start_counts, p.start_counts + n_, int64_t{0});
    for (size_t s = 0; s < p.blocks; ++s) {
      const int32_t* c = p.start_counts + s * n_;
      if (std::any_of(c, c + n_, [](int32_t v) { return v < 0; }) || std::accumulate(c, c + n_, int64_t{0}) != k || k == 0)
        return Status::InvalidArgument("decode: start_counts row " + std::to_string(s) +
                                       " must be counts >= 0 with the same positive sum as row 0 (" + std::to_string(k) + ")");
    }
  }
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

std::vector<float> PopularFirstCodebook(uint32_t n, uint32_t d, uint32_t private_dims, Rng& rng) {
  std::vector<float> c = RandomUnitCodebook(n, d, rng);  // the same draws as without private dimensions
  const uint32_t m = std::min(private_dims, d - 1);
  if (m == 0) return c;
  for (uint32_t i = 0; i < n; ++i) {
    float* row = &c[static_cast<size_t>(i) * d];
    if (i < m) {
      std::fill(row, row + d, 0.0f);
      row[i] = 1.0f;
      continue;
    }
    std::fill(row, row + m, 0.0f);
    double norm = 0.0;
    for (uint32_t j = m; j < d; ++j) norm += static_cast<double>(row[j]) * row[j];
    const float inv = static_cast<float>(1.0 / std::sqrt(std::max(norm, 1e-30)));
    for (uint32_t j = m; j < d; ++j) row[j] *= inv;
  }
  return c;
}

Result<std::unique_ptr<CountDecoder>> MakeAmpDa(uint32_t n, uint32_t d, uint64_t seed, const AmpDaOptions& opt) {
  Rng rng = MakeRng(seed, "amp-da-codebook");
  auto code = DesignedCodebook(n, d, opt.code, rng);
  if (!code.ok()) return Status::InvalidArgument("AMP-DA's code: " + code.status().message());
  return std::unique_ptr<CountDecoder>(new AmpDa(n, d, std::move(code).value(), opt));
}

// The source tree's decoder when edgebed runs from its build folder, else the installed package's.
std::string DefaultDecoderPath() {
  const std::string built = std::string(EDGEBED_SOURCE_DIR) + "/codecs/decoders/amp_da_net_follow.pt";
  if (std::ifstream(built).good()) return built;
  return "/usr/share/edgebed/decoders/amp_da_net_follow.pt";
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

}  // namespace edgebed
