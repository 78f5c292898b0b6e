// Codes designed for the URA uplink: unit-norm codewords with a small largest mutual coherence
// (|<c_i, c_k>|), so that moving one count between two codewords changes the received signal by at
// least sqrt(2 - 2 mu). A random code of 128 rows in 64 dimensions has mu near 0.5; the Welch bound
// for the same shape is 0.089.
#pragma once
#include <cstdint>
#include <vector>

#include "codecs/count_decoder.h"
#include "codecs/status.h"

namespace edgebed {

struct LowCoherenceOptions {
  uint32_t private_dims = 0;       // rows 0..private_dims-1 stay unit vectors (PopularFirstCodebook)
  uint32_t iterations = 2000;      // descent steps
  double sharpness_start = 20.0;   // beta of the smooth maximum of g^2, grown geometrically to the end's
  double sharpness_end = 400.0;
  double step = 0.02;              // largest move of a row per step (on the unit sphere)
  Status Validate(uint32_t n, uint32_t d) const;  // names the field and its range
};

// PopularFirstCodebook(n, d, private_dims, rng), then the shared rows descended to a low coherence.
Result<std::vector<float>> LowCoherenceCodebook(uint32_t n, uint32_t d, const LowCoherenceOptions& opt, Rng& rng);
// A code descended on the expected error of single moved counts. For count vectors x drawn from the
// prior (K uniform in [ka_min, ka_max], K draws from `popularity`), MAP decoding confuses x with
// x + e_i - e_k (one count moved from k to i) with probability Q(D / (2 s) - (s / D) ln r), where
// D = |c_i - c_k|, s^2 = |C^T x|^2 / (d SNR) (the paper's SNR of the sum, not differentiated) and r
// the prior's ratio; each confusion costs 2 in squared error. The rows descend (Riemannian steps, as
// LowCoherenceCodebook) on the sum of those over the pairs, per |x|^2, a fresh batch of blocks each step.
struct PairwiseErrorOptions {
  std::vector<double> popularity;  // n, sums to 1
  uint32_t ka_min = 7, ka_max = 13;
  double snr_db = 8.0;
  bool per_node = false;           // snr_db is each node's (s^2 = 1 / (d SNR)), not the sum's
  uint32_t iterations = 3000;
  uint32_t blocks = 1024;          // count vectors per step
  double step = 0.01;              // largest move of a row per step, decaying linearly to a tenth
  Status Validate(uint32_t n) const;
};
// `start` (n x d, unit rows) descended; returns the code and the bound at the start and the end.
struct PairwiseErrorResult {
  std::vector<float> code;
  double bound_start = 0.0, bound_end = 0.0;
};
Result<PairwiseErrorResult> PairwiseErrorCodebook(std::vector<float> start, uint32_t n, uint32_t d,
                                                  const PairwiseErrorOptions& opt, Rng& rng);
// The code `design` asks for: PopularFirstCodebook or LowCoherenceCodebook (default descent options),
// then PairwiseErrorCodebook (default options, a Zipf popularity) when design.pairwise_snr_db is set.
Result<std::vector<float>> DesignedCodebook(uint32_t n, uint32_t d, const CodeDesign& design, Rng& rng);
// max_{i<k} |<c_i, c_k>| of an n x d row-major code.
double MaxCoherence(const std::vector<float>& c, uint32_t n, uint32_t d);

}  // namespace edgebed
