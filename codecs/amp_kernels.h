// The pieces AMP-DA and AMP-DA-Net share (private to codecs/, libtorch): tensors over borrowed
// memory, the initial count per block, the count posterior (the reference and the fused kernel),
// FLOP counts and the post-processing (K_hat, top-K, least-squares refit, greedy rounding, MAP search).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "codecs/count_decoder.h"

namespace edgebed::amp {

using torch::Tensor;

Tensor Borrow(const float* p, std::vector<int64_t> shape);
std::vector<float> ToVec(const Tensor& t);
// Initial K per block from the received energy, bounded by k_max.
Tensor InitialK(const Tensor& Y, double noise_var, uint32_t k_max);

struct Post {
  Tensor mean, var, post;
};
// Posterior mean and variance of x in {0..M} given r = x + N(0, 1 / (2 scale)) and a log prior
// (broadcastable to S x n x (M+1)), at temperature `temp`.
Post DiscretePosterior(const Tensor& R, const Tensor& scale, const Tensor& logprior, const Tensor& mvals,
                       const Tensor& temp = Tensor());
// The fused kernel on R (S x n), threaded over rows: mean and variance, and the posterior mass of
// each support point summed over all entries when `post_sum` is given.
Post FusedPosterior(const Tensor& R, const Tensor& scale, int64_t m1, const Tensor& log_prior, const Tensor& log_lambda,
                    float inv_temp, std::vector<double>* post_sum);

double PosteriorFlops(int64_t S, int64_t n, int64_t M1);
double GemmFlops(int64_t m, int64_t k, int64_t n);
// Post-processing (count_postprocess.cc). K_hat = the mode of the rounded per-block sums; per block
// the K_hat largest entries, a least-squares refit of y on their codewords, greedy rounding to K_hat.
// With p.map_refine, then a MAP swap search: greedy moves of one count from one codeword to another
// while a move lowers the negative log posterior ||y - counts C||^2 / (2 var) - log prior (Poisson
// counts of mean K_hat x popularity, i.e. Multinomial given the sum K_hat, which stays), with var the
// larger of noise_var and the rounding's residual power per entry (a block's own noise and estimate
// error); and out->mean, the posterior mean by Gibbs sampling from the search's end point.
void PostProcess(const Tensor& X, const Tensor& Y, const Tensor& C, const CountProblem& p, CountEstimate* out);

}  // namespace edgebed::amp
