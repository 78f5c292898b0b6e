// Vector quantisation of model updates (MD-AirComp, arXiv 2405.15969; AMP-DA-Net, arXiv 2512.19777).
// An update of N values is cut into S = ceil(N / L) blocks of L values (the last one zero-padded);
// each block becomes the index of its nearest centroid in a codebook Q of n centroids that the
// server fits each round with k-means++ and broadcasts. Error feedback keeps what quantisation lost
// and adds it to the node's next update.
#pragma once
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "codecs/rng.h"
#include "codecs/status.h"

namespace edgebed {

struct VqCodebook {
  uint32_t size = 0;          // n centroids
  uint32_t block_length = 0;  // L values per block
  std::vector<float> centroids;   // n x L, row-major; row 0 the most popular
  std::vector<double> popularity; // n, sums to 1: the share of the fitting data nearest each centroid

  const float* centroid(uint32_t i) const { return centroids.data() + static_cast<size_t>(i) * block_length; }
  // Checks sizes and finiteness; `what` names the message the codebook came in.
  Status Validate(const char* what) const;
};

inline size_t NumBlocks(size_t values, uint32_t block_length) { return (values + block_length - 1) / block_length; }

struct KMeansOptions {
  uint32_t size = 128;        // n
  uint32_t block_length = 20; // L
  uint32_t iterations = 10;   // Lloyd iterations after k-means++ seeding
  size_t max_blocks = 20000;  // blocks drawn (without replacement) from the data to fit on
};

// k-means++ seeding (Arthur & Vassilvitskii 2007) then Lloyd iterations on the blocks of `values`;
// centroids sorted by popularity (most popular first). Every draw comes from `rng`.
Result<VqCodebook> FitCodebook(const float* values, size_t count, const KMeansOptions& opt, Rng& rng);

// Index of the nearest centroid of each block of `values` (count values, S blocks).
void NearestCentroids(const VqCodebook& q, const float* values, size_t count, uint32_t* indices);

// The quantised vector of `count` values that the indices stand for.
void Dequantise(const VqCodebook& q, const uint32_t* indices, size_t count, float* out);

// Error feedback: quantises update + residual, keeps the new residual. Scale-free: the residual is
// the node's own, kept across the rounds it takes part in.
class ErrorFeedbackQuantiser {
 public:
  // Writes S indices; `update` (count values) is not changed.
  void Quantise(const VqCodebook& q, const float* update, size_t count, bool error_feedback, uint32_t* indices);
  const std::vector<float>& residual() const { return residual_; }
  void set_residual(std::vector<float> r) { residual_ = std::move(r); }  // a checkpoint's

 private:
  std::vector<float> residual_, work_;
};

}  // namespace edgebed
