// Symmetric functions of the nodes' quantised updates, computed from what digital OTA recovers:
// per block s, the count vector x_s (how many nodes sent each codeword). The multiset of a block's
// codewords fixes any symmetric function of the K nodes' blocks, coordinate by coordinate:
//   mean          sum_i x_i Q_i / K
//   trimmed_mean  per coordinate, drop floor(trim K) values at each end, average the rest
//   median        per coordinate, the median of the K values (mean of the middle two for even K)
//   majority      per coordinate, the sign most nodes sent (ties: 0) times the mean magnitude
//                 (signSGD with majority vote, Bernstein et al. 2018, with its step set by the data)
// The public AMP-DA-Net code stops at the mean; these are edgebed's.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "codecs/status.h"
#include "codecs/vq.h"

namespace edgebed {

enum class SymmetricFn { kMean, kTrimmedMean, kMedian, kMajority };

Result<SymmetricFn> ParseSymmetricFn(const std::string& name);  // "mean" | "trimmed_mean" | "median" | "majority"
const char* SymmetricFnName(SymmetricFn f);

struct SymmetricOptions {
  SymmetricFn fn = SymmetricFn::kMean;
  double trim = 0.2;  // trimmed_mean: share dropped at each end, [0, 0.5)
};

// counts: S x n (row-major) non-negative integers; blocks whose counts sum to 0 give 0. Writes the
// `count` values of the aggregate update (S = NumBlocks(count, L)).
Status AggregateCounts(const VqCodebook& q, const int32_t* counts, size_t count, const SymmetricOptions& opt, float* out);

// The mean from soft counts (the decoder's estimate before rounding, negative entries as 0) over
// K_hat: sum_i x_i Q_i / k_hat per block. At low SNR it errs less than the mean of rounded counts.
void MeanFromSoftCounts(const VqCodebook& q, const float* soft, uint32_t k_hat, size_t count, float* out);

// The value of the function over the multiset {values[k] repeated mult[k] times}; the kernel both
// the count path and anything else that has a multiset use.
float SymmetricOfMultiset(std::vector<std::pair<float, int32_t>>& values_mult, const SymmetricOptions& opt);

}  // namespace edgebed
