#include "codecs/vq.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

namespace edgebed {
namespace {

// Squared distance between a block and a centroid.
inline float Dist2(const float* a, const float* b, uint32_t L) {
  float s = 0.0f;
  for (uint32_t j = 0; j < L; ++j) {
    const float d = a[j] - b[j];
    s += d * d;
  }
  return s;
}

// Block s of `values`, zero-padded past `count`, into buf[L].
inline const float* Block(const float* values, size_t count, uint32_t L, size_t s, float* buf) {
  const size_t lo = s * L;
  if (lo + L <= count) return values + lo;
  std::fill(buf, buf + L, 0.0f);
  std::copy(values + lo, values + count, buf);
  return buf;
}

uint32_t Nearest(const VqCodebook& q, const float* x) {
  uint32_t best = 0;
  float bd = std::numeric_limits<float>::infinity();
  for (uint32_t i = 0; i < q.size; ++i) {
    const float d = Dist2(x, q.centroid(i), q.block_length);
    if (d < bd) {
      bd = d;
      best = i;
    }
  }
  return best;
}

}  // namespace

Status VqCodebook::Validate(const char* what) const {
  const std::string w(what);
  if (size < 2 || size > 65536) return Status::InvalidArgument(w + ".size = " + std::to_string(size) + ", allowed [2, 65536]");
  if (block_length < 1 || block_length > 4096)
    return Status::InvalidArgument(w + ".block_length = " + std::to_string(block_length) + ", allowed [1, 4096]");
  if (centroids.size() != static_cast<size_t>(size) * block_length)
    return Status::InvalidArgument(w + ".centroids holds " + std::to_string(centroids.size()) + " values, size x block_length = " +
                                   std::to_string(static_cast<size_t>(size) * block_length));
  for (float v : centroids)
    if (!std::isfinite(v)) return Status::InvalidArgument(w + ".centroids holds a non-finite value");
  if (!popularity.empty() && popularity.size() != size)
    return Status::InvalidArgument(w + ".popularity holds " + std::to_string(popularity.size()) + " values, expected " +
                                   std::to_string(size));
  return Status::Ok();
}

Result<VqCodebook> FitCodebook(const float* values, size_t count, const KMeansOptions& opt, Rng& rng) {
  const uint32_t L = opt.block_length, n = opt.size;
  if (L == 0 || n < 2) return Status::InvalidArgument("ota.block_length must be >= 1 and ota.codebook_size >= 2");
  const size_t S = NumBlocks(count, L);
  if (S == 0) return Status::InvalidArgument("k-means: no data to fit a codebook on");
  // The blocks to fit on: all, or a random subset.
  std::vector<size_t> pick(S);
  std::iota(pick.begin(), pick.end(), size_t{0});
  if (S > opt.max_blocks) {
    for (size_t i = 0; i < opt.max_blocks; ++i)
      std::swap(pick[i], pick[i + std::uniform_int_distribution<size_t>(0, S - 1 - i)(rng)]);
    pick.resize(opt.max_blocks);
  }
  const size_t m = pick.size();
  std::vector<float> data(m * L), buf(L);
  for (size_t i = 0; i < m; ++i) {
    const float* b = Block(values, count, L, pick[i], buf.data());
    std::copy(b, b + L, data.begin() + static_cast<std::ptrdiff_t>(i * L));
  }
  VqCodebook q;
  q.size = n;
  q.block_length = L;
  q.centroids.assign(static_cast<size_t>(n) * L, 0.0f);
  // k-means++: each next centroid drawn with probability proportional to D(x)^2.
  std::vector<float> d2(m, std::numeric_limits<float>::infinity());
  size_t first = std::uniform_int_distribution<size_t>(0, m - 1)(rng);
  std::copy_n(&data[first * L], L, q.centroids.begin());
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  for (uint32_t c = 1; c < n; ++c) {
    const float* prev = q.centroid(c - 1);
    double total = 0.0;
    for (size_t i = 0; i < m; ++i) {
      d2[i] = std::min(d2[i], Dist2(&data[i * L], prev, L));
      total += d2[i];
    }
    size_t chosen = std::uniform_int_distribution<size_t>(0, m - 1)(rng);
    if (total > 0.0) {
      double target = u01(rng) * total, acc = 0.0;
      for (size_t i = 0; i < m; ++i) {
        acc += d2[i];
        if (acc >= target) {
          chosen = i;
          break;
        }
      }
    }
    std::copy_n(&data[chosen * L], L, q.centroids.begin() + static_cast<std::ptrdiff_t>(c) * L);
  }
  // Lloyd iterations.
  std::vector<uint32_t> assign(m);
  std::vector<double> sum(static_cast<size_t>(n) * L);
  std::vector<size_t> members(n);
  for (uint32_t it = 0; it <= opt.iterations; ++it) {
    for (size_t i = 0; i < m; ++i) assign[i] = Nearest(q, &data[i * L]);
    std::fill(members.begin(), members.end(), 0);
    for (size_t i = 0; i < m; ++i) ++members[assign[i]];
    if (it == opt.iterations) break;  // the last pass only counts members for the popularity
    std::fill(sum.begin(), sum.end(), 0.0);
    for (size_t i = 0; i < m; ++i)
      for (uint32_t j = 0; j < L; ++j) sum[static_cast<size_t>(assign[i]) * L + j] += data[i * L + j];
    for (uint32_t c = 0; c < n; ++c) {
      if (members[c] == 0) continue;  // an empty cluster keeps its centroid
      for (uint32_t j = 0; j < L; ++j)
        q.centroids[static_cast<size_t>(c) * L + j] = static_cast<float>(sum[static_cast<size_t>(c) * L + j] / members[c]);
    }
  }
  // Most popular first: the order AMP-DA-Net's prior and denoiser see the codewords in.
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return members[a] > members[b]; });
  VqCodebook sorted = q;
  sorted.popularity.resize(n);
  for (uint32_t r = 0; r < n; ++r) {
    std::copy_n(q.centroid(order[r]), L, sorted.centroids.begin() + static_cast<std::ptrdiff_t>(r) * L);
    sorted.popularity[r] = static_cast<double>(members[order[r]]) / static_cast<double>(m);
  }
  return sorted;
}

void NearestCentroids(const VqCodebook& q, const float* values, size_t count, uint32_t* indices) {
  const uint32_t L = q.block_length;
  std::vector<float> buf(L);
  const size_t S = NumBlocks(count, L);
  for (size_t s = 0; s < S; ++s) indices[s] = Nearest(q, Block(values, count, L, s, buf.data()));
}

void Dequantise(const VqCodebook& q, const uint32_t* indices, size_t count, float* out) {
  const uint32_t L = q.block_length;
  const size_t S = NumBlocks(count, L);
  for (size_t s = 0; s < S; ++s) {
    const float* c = q.centroid(indices[s]);
    const size_t lo = s * L, hi = std::min(count, lo + L);
    std::copy(c, c + (hi - lo), out + lo);
  }
}

void ErrorFeedbackQuantiser::Quantise(const VqCodebook& q, const float* update, size_t count, bool error_feedback,
                                      uint32_t* indices) {
  if (residual_.size() != count) residual_.assign(count, 0.0f);
  work_.resize(count);
  for (size_t i = 0; i < count; ++i) work_[i] = update[i] + (error_feedback ? residual_[i] : 0.0f);
  NearestCentroids(q, work_.data(), count, indices);
  if (!error_feedback) return;
  Dequantise(q, indices, count, residual_.data());
  for (size_t i = 0; i < count; ++i) residual_[i] = work_[i] - residual_[i];
}

}  // namespace edgebed
