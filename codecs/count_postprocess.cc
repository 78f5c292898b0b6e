// Post-processing shared by both count decoders (amp_kernels.h: PostProcess): from a decoder's soft
// estimate to integer counts, and with `map_refine` the MAP search and the posterior mean near it.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <numeric>

#include "codecs/amp_kernels.h"
#include "codecs/rng.h"

namespace edgebed::amp {
namespace {

// K_hat by vote: the mode over blocks of the rounded sums of X, in [1, k_max].
int64_t VoteK(const Tensor& X, uint32_t k_max) {
  const Tensor sums = X.clamp_min(0.0).sum(1).round().clamp(1.0, static_cast<double>(std::max<uint32_t>(1, k_max)));
  std::map<int64_t, int64_t> votes;
  auto sa = sums.accessor<float, 1>();
  for (int64_t s = 0; s < sums.size(0); ++s) ++votes[static_cast<int64_t>(sa[s])];
  int64_t K = 1, best = -1;
  for (const auto& [k, v] : votes)
    if (v > best) best = v, K = k;
  return K;
}

// Per block: the K largest entries of X, a least-squares refit of y on their codewords, greedy
// rounding so that the counts sum to K. counts: S x n.
void RoundToK(const Tensor& X, const Tensor& Y, const Tensor& C, int64_t K, int32_t* counts, double* flops) {
  const int64_t S = X.size(0), n = X.size(1), d = C.size(1);
  const Tensor top = std::get<1>(X.topk(K, 1));                                   // S x K
  const Tensor A = C.index_select(0, top.flatten()).view({S, K, d});              // S x K x d
  const Tensor G = A.bmm(A.transpose(1, 2)) + 1e-5 * torch::eye(K).unsqueeze(0);
  const Tensor sol = torch::linalg::solve(G, A.bmm(Y.unsqueeze(2)), true).squeeze(2).contiguous();  // S x K
  *flops += GemmFlops(S * K, d, K) + GemmFlops(S * K, d, 1) + static_cast<double>(S) * K * K * K;
  std::fill(counts, counts + S * n, 0);
  auto ta = top.accessor<int64_t, 2>();
  auto va = sol.accessor<float, 2>();
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
    for (int64_t j = 0; j < K; ++j) counts[s * n + ta[s][j]] += c[j];
  }
}

// The MAP swap search at sum K (amp_kernels.h: PostProcess) on counts (S x n, changed in place), and
// with `mean` (S x n) the posterior mean by Gibbs sampling from the search's end point.
void SwapSearch(const Tensor& Y, const Tensor& C, const CountProblem& p, int64_t K, int32_t* counts, float* mean,
                double* flops_out) {
  const int64_t S = Y.size(0), n = C.size(0), d = C.size(1);
  const Tensor Cc = C.contiguous(), Yc = Y.contiguous();
  const Tensor Gt = Cc.mm(Cc.t()).contiguous();  // n x n: codewords' inner products
  const float* cb = Cc.data_ptr<float>();
  const float* G = Gt.data_ptr<float>();
  const float* y = Yc.data_ptr<float>();
  *flops_out += GemmFlops(n, d, n);
  // log pi_i of the count prior (uniform without a popularity): Poisson counts of mean K pi, which
  // given their sum K are Multinomial(K, pi).
  std::vector<double> log_pi(n);
  for (int64_t i = 0; i < n; ++i) log_pi[i] = std::log(std::max(1e-12, p.popularity ? p.popularity[i] : 1.0 / n));
  std::mutex mu;
  at::parallel_for(0, S, 64, [&](int64_t lo, int64_t hi) {
    std::vector<double> r(d), g(n), acc(n), cond(n);
    std::vector<int64_t> units;
    std::vector<int32_t> x;
    double flops = 0.0;
    for (int64_t s = lo; s < hi; ++s) {
      int32_t* c = counts + s * n;
      // r = y - c C, g = C r.
      for (int64_t j = 0; j < d; ++j) r[j] = y[s * d + j];
      for (int64_t i = 0; i < n; ++i)
        if (c[i])
          for (int64_t j = 0; j < d; ++j) r[j] -= c[i] * cb[i * d + j];
      double res = 0.0;
      for (int64_t j = 0; j < d; ++j) res += r[j] * r[j];
      for (int64_t i = 0; i < n; ++i) {
        double v = 0.0;
        for (int64_t j = 0; j < d; ++j) v += cb[i * d + j] * r[j];
        g[i] = v;
      }
      flops += 2.0 * static_cast<double>(n) * d * 2;
      // The block's noise variance: the given one, or the rounding's residual power if larger (the
      // estimate's own error, and blocks whose power, hence noise at a given SNR, is above the mean).
      const double inv_2var = 0.5 / std::max({1e-12, p.noise_var, res / d});
      // Moving one count from i to k (r += C_i - C_k) changes ||r||^2 by 2 (g_i - g_k) + G_ii + G_kk - 2 G_ik,
      // so the negative log posterior ||r||^2 / (2 var) - log prior by that / (2 var) - log(c_i pi_k /
      // (pi_i (c_k + 1))).
      auto dres = [&](int64_t i, int64_t k) { return 2.0 * (g[i] - g[k]) + G[i * n + i] + G[k * n + k] - 2.0 * G[i * n + k]; };
      auto move_cost = [&](int64_t i, int64_t k) {
        return inv_2var * dres(i, k) -
               (std::log(static_cast<double>(c[i])) - log_pi[i] + log_pi[k] - std::log(static_cast<double>(c[k] + 1)));
      };
      auto move_residual = [&](int64_t i, int64_t k) {  // g = C r after the move
        for (int64_t m = 0; m < n; ++m) g[m] += G[m * n + i] - G[m * n + k];
      };
      for (int64_t it = 0; it < 2 * std::max<int64_t>(1, K); ++it) {  // at most 2 K moves
        double best = -1e-9;
        int64_t bi = -1, bk = -1;
        for (int64_t i = 0; i < n; ++i) {
          if (c[i] <= 0) continue;
          for (int64_t k = 0; k < n; ++k) {
            if (k == i) continue;
            const double delta = move_cost(i, k);
            if (delta < best) best = delta, bi = i, bk = k;
          }
          flops += 6.0 * static_cast<double>(n);
        }
        if (bi < 0) break;
        --c[bi];
        ++c[bk];
        move_residual(bi, bk);
        flops += 2.0 * static_cast<double>(n);
      }
      if (!mean) continue;
      // E[x | y] by Gibbs sampling from the MAP point: each step takes one of the K counts (a node)
      // and draws its codeword k from its conditional, P(k) ~ pi_k exp(-||y - (c - e_i + e_k) C||^2 /
      // (2 var)), i.e. exp(-(labelled move cost)); the estimate averages E[x | the other counts] =
      // c - e_i + P(.) over the steps after a fifth of the sweeps (Rao-Blackwellised).
      Rng gen = MakeRng(p.seed, "count-gibbs", static_cast<uint64_t>(s));
      units.clear();
      for (int64_t i = 0; i < n; ++i)
        for (int32_t u = 0; u < c[i]; ++u) units.push_back(i);
      std::fill(acc.begin(), acc.end(), 0.0);
      x.assign(c, c + n);
      const uint32_t burn = p.posterior_sweeps / 5;
      uint64_t steps = 0;
      for (uint32_t sweep = 0; sweep < p.posterior_sweeps; ++sweep)
        for (int64_t& i : units) {
          double top = -1e300;
          for (int64_t k = 0; k < n; ++k) {
            cond[k] = k == i ? 0.0 : log_pi[k] - log_pi[i] - inv_2var * dres(i, k);
            top = std::max(top, cond[k]);
          }
          double sum = 0.0;
          for (int64_t k = 0; k < n; ++k) sum += cond[k] = std::exp(cond[k] - top);
          double u = std::uniform_real_distribution<double>(0.0, sum)(gen);
          int64_t k = 0;
          while (k < n - 1 && (u -= cond[k]) > 0.0) ++k;
          if (sweep >= burn) {
            for (int64_t q = 0; q < n; ++q) acc[q] += x[q] + cond[q] / sum;
            acc[i] -= 1.0;
            ++steps;
          }
          if (k != i) {
            --x[i];
            ++x[k];
            move_residual(i, k);
            i = k;
          }
          flops += 12.0 * static_cast<double>(n);
        }
      float* m = mean + s * n;
      for (int64_t q = 0; q < n; ++q) m[q] = steps ? static_cast<float>(acc[q] / steps) : static_cast<float>(c[q]);
    }
    std::lock_guard<std::mutex> lock(mu);
    *flops_out += flops;
  });
}

}  // namespace

void PostProcess(const Tensor& X, const Tensor& Y, const Tensor& C, const CountProblem& p, CountEstimate* out) {
  const int64_t S = X.size(0), n = X.size(1), d = C.size(1);
  const int64_t K = VoteK(X, p.k_max);
  out->k_hat = static_cast<uint32_t>(K);
  out->counts.assign(static_cast<size_t>(S * n), 0);
  const int64_t k_top = std::min<int64_t>(K, std::min(n, d));
  RoundToK(X, Y, C, k_top, out->counts.data(), &out->flops);
  if (!p.map_refine) return;
  int64_t k_search = k_top;
  if (p.start_counts) {  // validated by CountDecoder::Decode: rows of one sum
    std::copy(p.start_counts, p.start_counts + S * n, out->counts.begin());
    k_search = std::accumulate(p.start_counts, p.start_counts + n, int64_t{0});
  }
  out->mean.assign(out->counts.size(), 0.0f);
  SwapSearch(Y, C, p, k_search, out->counts.data(), out->mean.data(), &out->flops);
}

}  // namespace edgebed::amp
