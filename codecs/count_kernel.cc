#include "codecs/count_kernel.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace edgebed {

// On x86-64 an AVX2 clone (8-wide expf) is picked at load time where the CPU has it.
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target_clones("avx2", "default")))
#endif
void CountPosterior(const CountPosteriorArgs& a) {
  constexpr int64_t kTile = 64;
  const int m1 = a.m1;
  std::vector<float> buf(static_cast<size_t>(m1) * kTile), mx(kTile), sum(kTile), s1(kTile), s2(kTile), lam(kTile);
  std::vector<float> lf(m1);
  for (int m = 0; m < m1; ++m) lf[m] = std::lgamma(static_cast<float>(m) + 1.0f);
  std::vector<double> acc(a.post_sum ? m1 : 0, 0.0);
  const float it = a.inv_temperature;
  for (int64_t row = 0; row < a.rows; ++row) {
    const float s = a.scale[row];
    for (int64_t lo = 0; lo < a.n; lo += kTile) {
      const int64_t w = std::min(kTile, a.n - lo);
      const float* rr = a.r + row * a.n + lo;
      const float* ll = a.log_lambda ? a.log_lambda + row * a.n + lo : nullptr;
      for (int64_t j = 0; j < w; ++j) mx[j] = -INFINITY;
      if (ll)
        for (int64_t j = 0; j < w; ++j) lam[j] = std::exp(ll[j]);
      for (int m = 0; m < m1; ++m) {
        float* l = &buf[static_cast<size_t>(m) * kTile];
        const float fm = static_cast<float>(m);
        if (ll) {
          const float c = lf[m];
          for (int64_t j = 0; j < w; ++j) {
            const float dv = rr[j] - fm;
            l[j] = (fm * ll[j] - lam[j] - c - s * dv * dv) * it;
          }
        } else {
          const float p = a.log_prior[m];
          for (int64_t j = 0; j < w; ++j) {
            const float dv = rr[j] - fm;
            l[j] = (p - s * dv * dv) * it;
          }
        }
        for (int64_t j = 0; j < w; ++j) mx[j] = std::max(mx[j], l[j]);
      }
      for (int64_t j = 0; j < w; ++j) sum[j] = s1[j] = s2[j] = 0.0f;
      for (int m = 0; m < m1; ++m) {
        float* l = &buf[static_cast<size_t>(m) * kTile];
        const float fm = static_cast<float>(m), fm2 = fm * fm;
        for (int64_t j = 0; j < w; ++j) {
          const float e = std::exp(std::max(l[j] - mx[j], -80.0f));  // no underflow: libmvec's slow path
          l[j] = e;
          sum[j] += e;
          s1[j] += fm * e;
          s2[j] += fm2 * e;
        }
      }
      float* mean = a.mean + row * a.n + lo;
      float* var = a.var + row * a.n + lo;
      for (int64_t j = 0; j < w; ++j) {
        const float inv = 1.0f / sum[j];
        const float mu = s1[j] * inv;
        mean[j] = mu;
        var[j] = std::max(s2[j] * inv - mu * mu, 0.0f);
        sum[j] = inv;
      }
      if (a.post_sum)
        for (int m = 0; m < m1; ++m) {
          const float* l = &buf[static_cast<size_t>(m) * kTile];
          float t = 0.0f;
          for (int64_t j = 0; j < w; ++j) t += l[j] * sum[j];
          acc[m] += t;
        }
    }
  }
  if (a.post_sum)
    for (int m = 0; m < m1; ++m) a.post_sum[m] += acc[m];
}

}  // namespace edgebed
