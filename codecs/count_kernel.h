// The inner loop of both OTA count decoders, fused: for each entry r of the AMP pseudo-data R, the
// posterior of a count m in {0..M} given r = m + N(0, 1 / (2 s)) and a prior, returned as its mean
// and variance. One pass over memory, exponentials vectorised (this file is built with
// -O3 -ffast-math so that GCC calls glibc's vector expf); no libtorch.
#pragma once
#include <cstdint>

namespace edgebed {

struct CountPosteriorArgs {
  const float* r = nullptr;        // rows x n
  const float* scale = nullptr;    // rows: s of each row (1 / (2 tau^2), times any learned scale)
  int64_t rows = 0, n = 0;
  int m1 = 2;                      // M + 1 support points 0..M
  // Prior: either one log prior over the support shared by every entry (AMP-DA) ...
  const float* log_prior = nullptr;  // m1
  // ... or a Poisson prior per entry with log rate log_lambda (AMP-DA-Net): m log lam - lam - log m!
  const float* log_lambda = nullptr;  // rows x n
  float inv_temperature = 1.0f;
  float* mean = nullptr;           // rows x n
  float* var = nullptr;            // rows x n
  double* post_sum = nullptr;      // m1, optional: posterior mass of each support point summed (EM)
};

void CountPosterior(const CountPosteriorArgs& a);

}  // namespace edgebed
