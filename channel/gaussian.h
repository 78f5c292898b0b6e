// Seeded noise and fading draws. liquid-dsp's own noise comes from the global rand(), so edgebed
// draws every random number here, from generators that each object is handed.
#pragma once
#include <cmath>
#include <complex>
#include <cstdint>

#include "codecs/rng.h"

namespace edgebed {

using cfloat = std::complex<float>;

// xoshiro256+ (Blackman & Vigna): a fast generator for bulk noise, seeded through SplitMix64.
class FastRng {
 public:
  explicit FastRng(uint64_t seed) {
    for (auto& s : s_) s = seed = MixSeed(seed);
  }
  uint64_t Next() {
    const uint64_t r = s_[0] + s_[3];
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = (s_[3] << 45) | (s_[3] >> 19);
    return r;
  }
  // Uniform in (0, 1], never 0 (safe for log).
  double Uniform() { return (static_cast<double>(Next() >> 11) + 1.0) * 0x1.0p-53; }

 private:
  uint64_t s_[4];
};

// Complex Gaussian samples by Box-Muller; each call gives one CN(0, 1) sample (E|z|^2 = 1).
class ComplexGaussian {
 public:
  explicit ComplexGaussian(uint64_t seed) : rng_(seed) {}
  cfloat Next() {
    const double r = std::sqrt(-std::log(rng_.Uniform()));  // |z|^2 ~ Exp(1)
    const double phi = 2.0 * M_PI * rng_.Uniform();
    return {static_cast<float>(r * std::cos(phi)), static_cast<float>(r * std::sin(phi))};
  }
  // x[i] += sigma * z[i], z ~ CN(0, 1): AWGN of power sigma^2 per complex sample.
  void AddNoise(cfloat* x, size_t n, float sigma) {
    for (size_t i = 0; i < n; ++i) x[i] += sigma * Next();
  }
  FastRng& uniform() { return rng_; }

 private:
  FastRng rng_;
};

}  // namespace edgebed
