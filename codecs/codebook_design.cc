#include "codecs/codebook_design.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace edgebed {

Status CodeDesign::Validate(uint32_t n, uint32_t d) const {
  if (d == 0 || private_dims >= d || private_dims > n)
    return Status::InvalidArgument("private_dims (" + std::to_string(private_dims) + ") must be in [0, min(d - 1, n)] = [0, " +
                                   std::to_string(d == 0 ? 0 : std::min(d - 1, n)) + "]");
  return Status::Ok();
}

Status LowCoherenceOptions::Validate(uint32_t n, uint32_t d) const {
  if (Status s = CodeDesign{private_dims, true}.Validate(n, d); !s.ok()) return s;
  if (!(sharpness_start > 0.0) || !(sharpness_end >= sharpness_start) || sharpness_end > 1000.0)
    return Status::InvalidArgument("sharpness must satisfy 0 < start <= end <= 1000, got " + std::to_string(sharpness_start) +
                                   " .. " + std::to_string(sharpness_end));
  if (iterations == 0 || iterations > 1000000)
    return Status::InvalidArgument("iterations (" + std::to_string(iterations) + ") must be in [1, 1000000]");
  if (!(step > 0.0) || step > 1.0) return Status::InvalidArgument("step (" + std::to_string(step) + ") must be in (0, 1]");
  return Status::Ok();
}

double MaxCoherence(const std::vector<float>& c, uint32_t n, uint32_t d) {
  double mu = 0.0;
  for (uint32_t i = 0; i < n; ++i)
    for (uint32_t k = i + 1; k < n; ++k) {
      double g = 0.0;
      for (uint32_t j = 0; j < d; ++j) g += static_cast<double>(c[size_t(i) * d + j]) * c[size_t(k) * d + j];
      mu = std::max(mu, std::abs(g));
    }
  return mu;
}

// Rows m..n-1 live in dimensions m..d-1 (rows 0..m-1 are the private unit vectors and stay). The
// shared rows descend on (1/beta) log sum_{i != k} exp(beta g_ik^2) over their Gram entries g_ik (a
// smooth maximum of the squared coherence), one Riemannian step per iteration: the gradient's part
// along each row is removed and the row renormalised. beta grows geometrically from start to end.
Result<std::vector<float>> LowCoherenceCodebook(uint32_t n, uint32_t d, const LowCoherenceOptions& opt, Rng& rng) {
  if (Status s = opt.Validate(n, d); !s.ok()) return s;
  std::vector<float> c = PopularFirstCodebook(n, d, opt.private_dims, rng);
  const uint32_t m = opt.private_dims, rows = n - m, dims = d - m;
  if (rows < 2) return c;
  std::vector<double> x(size_t(rows) * dims), g(size_t(rows) * rows), grad(size_t(rows) * dims);
  for (uint32_t i = 0; i < rows; ++i)
    for (uint32_t j = 0; j < dims; ++j) x[size_t(i) * dims + j] = c[size_t(i + m) * d + m + j];
  const double ratio = opt.sharpness_end / opt.sharpness_start;
  for (uint32_t it = 0; it < opt.iterations; ++it) {
    const double beta = opt.sharpness_start * std::pow(ratio, double(it) / std::max(1u, opt.iterations - 1));
    double top = 0.0;
    for (uint32_t i = 0; i < rows; ++i)
      for (uint32_t k = i + 1; k < rows; ++k) {
        double s = 0.0;
        for (uint32_t j = 0; j < dims; ++j) s += x[size_t(i) * dims + j] * x[size_t(k) * dims + j];
        g[size_t(i) * rows + k] = g[size_t(k) * rows + i] = s;
        top = std::max(top, s * s);
      }
    // Weights of the smooth maximum, shifted by its largest term (no overflow).
    double z = 0.0;
    for (uint32_t i = 0; i < rows; ++i)
      for (uint32_t k = 0; k < rows; ++k) {
        if (i == k) continue;
        const double s = g[size_t(i) * rows + k];
        const double w = std::exp(beta * (s * s - top));
        g[size_t(i) * rows + k] = w * s;  // d/dg of exp(beta g^2) / (2 beta), up to the common factor
        z += w;
      }
    std::fill(grad.begin(), grad.end(), 0.0);
    for (uint32_t i = 0; i < rows; ++i)
      for (uint32_t k = 0; k < rows; ++k) {
        if (i == k) continue;
        const double w = g[size_t(i) * rows + k] / z;
        for (uint32_t j = 0; j < dims; ++j) grad[size_t(i) * dims + j] += w * x[size_t(k) * dims + j];
      }
    // Projected onto each row's tangent plane; the step is a share of the unit sphere's scale: the
    // largest row gradient moves by `step`.
    double gmax = 0.0;
    for (uint32_t i = 0; i < rows; ++i) {
      const double* xi = &x[size_t(i) * dims];
      double* gi = &grad[size_t(i) * dims];
      double along = 0.0, gn = 0.0;
      for (uint32_t j = 0; j < dims; ++j) along += gi[j] * xi[j];
      for (uint32_t j = 0; j < dims; ++j) {
        gi[j] -= along * xi[j];
        gn += gi[j] * gi[j];
      }
      gmax = std::max(gmax, std::sqrt(gn));
    }
    if (gmax == 0.0) break;
    const double eta = opt.step / gmax;
    for (uint32_t i = 0; i < rows; ++i) {
      double norm = 0.0;
      for (uint32_t j = 0; j < dims; ++j) {
        double& v = x[size_t(i) * dims + j];
        v -= eta * grad[size_t(i) * dims + j];
        norm += v * v;
      }
      const double inv = 1.0 / std::sqrt(norm);
      for (uint32_t j = 0; j < dims; ++j) x[size_t(i) * dims + j] *= inv;
    }
  }
  for (uint32_t i = 0; i < rows; ++i)
    for (uint32_t j = 0; j < dims; ++j) c[size_t(i + m) * d + m + j] = static_cast<float>(x[size_t(i) * dims + j]);
  return c;
}

Result<std::vector<float>> DesignedCodebook(uint32_t n, uint32_t d, const CodeDesign& design, Rng& rng) {
  if (Status s = design.Validate(n, d); !s.ok()) return s;
  if (!design.low_coherence) return PopularFirstCodebook(n, d, design.private_dims, rng);
  LowCoherenceOptions lc;
  lc.private_dims = design.private_dims;
  return LowCoherenceCodebook(n, d, lc, rng);
}

}  // namespace edgebed
