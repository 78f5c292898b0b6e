#include "codecs/codebook_design.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "codecs/count_data.h"

namespace edgebed {

Status CodeDesign::Validate(uint32_t n, uint32_t d) const {
  if (d == 0 || private_dims >= d || private_dims > n)
    return Status::InvalidArgument("private_dims (" + std::to_string(private_dims) + ") must be in [0, min(d - 1, n)] = [0, " +
                                   std::to_string(d == 0 ? 0 : std::min(d - 1, n)) + "]");
  if (pairwise_snr_db && !(*pairwise_snr_db >= -20.0 && *pairwise_snr_db <= 60.0))
    return Status::InvalidArgument("pairwise_snr_db (" + std::to_string(*pairwise_snr_db) + ") must be in [-20, 60]");
  if (!(pairwise_zipf >= 0.0 && pairwise_zipf <= 10.0))
    return Status::InvalidArgument("pairwise_zipf (" + std::to_string(pairwise_zipf) + ") must be in [0, 10]");
  return Status::Ok();
}

Status LowCoherenceOptions::Validate(uint32_t n, uint32_t d) const {
  CodeDesign design;
  design.private_dims = private_dims;
  if (Status s = design.Validate(n, d); !s.ok()) return s;
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

namespace {
// Removes from each row's gradient its part along the row (the unit sphere's tangent plane at it);
// returns the largest row gradient's norm after.
double ProjectToTangent(const std::vector<double>& x, std::vector<double>* grad, uint32_t rows, uint32_t dims) {
  double gmax = 0.0;
  for (uint32_t i = 0; i < rows; ++i) {
    const double* xi = &x[size_t(i) * dims];
    double* gi = &(*grad)[size_t(i) * dims];
    double along = 0.0, gn = 0.0;
    for (uint32_t j = 0; j < dims; ++j) along += gi[j] * xi[j];
    for (uint32_t j = 0; j < dims; ++j) {
      gi[j] -= along * xi[j];
      gn += gi[j] * gi[j];
    }
    gmax = std::max(gmax, std::sqrt(gn));
  }
  return gmax;
}

// x_i -= eta g_i, then each row back to unit norm.
void StepOnSphere(std::vector<double>* x, const std::vector<double>& grad, uint32_t rows, uint32_t dims, double eta) {
  for (uint32_t i = 0; i < rows; ++i) {
    double* xi = &(*x)[size_t(i) * dims];
    double norm = 0.0;
    for (uint32_t j = 0; j < dims; ++j) {
      xi[j] -= eta * grad[size_t(i) * dims + j];
      norm += xi[j] * xi[j];
    }
    const double inv = 1.0 / std::sqrt(norm);
    for (uint32_t j = 0; j < dims; ++j) xi[j] *= inv;
  }
}
}  // namespace

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
    // The step is a share of the unit sphere's scale: the largest row gradient moves by `step`.
    const double gmax = ProjectToTangent(x, &grad, rows, dims);
    if (gmax == 0.0) break;
    StepOnSphere(&x, grad, rows, dims, opt.step / gmax);
  }
  for (uint32_t i = 0; i < rows; ++i)
    for (uint32_t j = 0; j < dims; ++j) c[size_t(i + m) * d + m + j] = static_cast<float>(x[size_t(i) * dims + j]);
  return c;
}

Status PairwiseErrorOptions::Validate(uint32_t n) const {
  if (popularity.size() != n)
    return Status::InvalidArgument("popularity has " + std::to_string(popularity.size()) + " entries for " + std::to_string(n) + " codewords");
  double total = 0.0;
  for (double v : popularity) {
    if (!(v > 0.0)) return Status::InvalidArgument("popularity: every entry must be > 0");
    total += v;
  }
  if (std::abs(total - 1.0) > 1e-6) return Status::InvalidArgument("popularity sums to " + std::to_string(total) + ", not 1");
  if (ka_min == 0 || ka_min > ka_max || ka_max > 1000)
    return Status::InvalidArgument("ka_min .. ka_max (" + std::to_string(ka_min) + " .. " + std::to_string(ka_max) + ") must satisfy 1 <= ka_min <= ka_max <= 1000");
  if (!(snr_db >= -20.0 && snr_db <= 60.0)) return Status::InvalidArgument("snr_db (" + std::to_string(snr_db) + ") must be in [-20, 60]");
  if (iterations == 0 || iterations > 1000000) return Status::InvalidArgument("iterations (" + std::to_string(iterations) + ") must be in [1, 1000000]");
  if (blocks == 0 || blocks > 1000000) return Status::InvalidArgument("blocks (" + std::to_string(blocks) + ") must be in [1, 1000000]");
  if (!(step > 0.0) || step > 1.0) return Status::InvalidArgument("step (" + std::to_string(step) + ") must be in (0, 1]");
  return Status::Ok();
}

namespace {
// The union bound of one batch and its gradient with respect to the Gram matrix (n x n, row-major).
double PairwiseBound(const std::vector<double>& gram, uint32_t n, uint32_t d, const PairwiseErrorOptions& opt,
                     std::discrete_distribution<uint32_t>& pick, Rng& rng, std::vector<double>* dgram) {
  const double snr = std::pow(10.0, opt.snr_db / 10.0), inv_sqrt_2pi = 0.3989422804014327;
  std::uniform_int_distribution<uint32_t> ka(opt.ka_min, opt.ka_max);
  std::vector<uint32_t> x(n, 0), support;
  double bound = 0.0, norm = 0.0;
  if (dgram) std::fill(dgram->begin(), dgram->end(), 0.0);
  for (uint32_t b = 0; b < opt.blocks; ++b) {
    for (uint32_t k : support) x[k] = 0;
    support.clear();
    const uint32_t K = ka(rng);
    for (uint32_t j = 0; j < K; ++j) {
      const uint32_t k = pick(rng);
      if (x[k]++ == 0) support.push_back(k);
    }
    double power = 0.0;
    for (uint32_t k : support) {
      norm += double(x[k]) * x[k];
      for (uint32_t l : support) power += double(x[k]) * x[l] * gram[size_t(k) * n + l];
    }
    const double s = std::sqrt((opt.per_node ? 1.0 : std::max(power, 1e-12)) / (d * snr));
    for (uint32_t k : support)
      for (uint32_t i = 0; i < n; ++i) {
        if (i == k) continue;
        const double D = std::sqrt(std::max(2.0 - 2.0 * gram[size_t(i) * n + k], 1e-12));
        const double L = std::log(opt.popularity[i] / opt.popularity[k] * x[k] / (x[i] + 1.0));
        const double a = D / (2.0 * s) - s * L / D;
        bound += std::erfc(a / std::sqrt(2.0));  // 2 Q(a): a confusion costs 2
        if (dgram) {
          // d(2 Q(a))/dD = -2 phi(a) (1/(2s) + s L / D^2), dD/dG_ik = -1/D.
          const double g = 2.0 * inv_sqrt_2pi * std::exp(-0.5 * a * a) * (1.0 / (2.0 * s) + s * L / (D * D)) / D;
          (*dgram)[size_t(i) * n + k] += g;
        }
      }
  }
  if (dgram)
    for (double& v : *dgram) v /= norm;
  return bound / norm;
}
}  // namespace

Result<PairwiseErrorResult> PairwiseErrorCodebook(std::vector<float> start, uint32_t n, uint32_t d,
                                                  const PairwiseErrorOptions& opt, Rng& rng) {
  if (Status s = opt.Validate(n); !s.ok()) return s;
  if (start.size() != size_t(n) * d)
    return Status::InvalidArgument("start code has " + std::to_string(start.size()) + " entries, not n x d = " + std::to_string(size_t(n) * d));
  std::discrete_distribution<uint32_t> pick(opt.popularity.begin(), opt.popularity.end());
  std::vector<double> c(start.begin(), start.end()), gram(size_t(n) * n), dgram(size_t(n) * n), grad(size_t(n) * d);
  auto fill_gram = [&] {
    for (uint32_t i = 0; i < n; ++i)
      for (uint32_t k = i; k < n; ++k) {
        double g = 0.0;
        for (uint32_t j = 0; j < d; ++j) g += c[size_t(i) * d + j] * c[size_t(k) * d + j];
        gram[size_t(i) * n + k] = gram[size_t(k) * n + i] = g;
      }
  };
  PairwiseErrorResult out;
  fill_gram();
  out.bound_start = PairwiseBound(gram, n, d, opt, pick, rng, nullptr);
  for (uint32_t it = 0; it < opt.iterations; ++it) {
    PairwiseBound(gram, n, d, opt, pick, rng, &dgram);
    // dB/dc_i = sum_k (dG_ik + dG_ki) c_k, projected onto row i's tangent plane.
    for (uint32_t i = 0; i < n; ++i) {
      double* gi = &grad[size_t(i) * d];
      std::fill(gi, gi + d, 0.0);
      for (uint32_t k = 0; k < n; ++k) {
        const double w = dgram[size_t(i) * n + k] + dgram[size_t(k) * n + i];
        if (w == 0.0) continue;
        for (uint32_t j = 0; j < d; ++j) gi[j] += w * c[size_t(k) * d + j];
      }
    }
    const double gmax = ProjectToTangent(c, &grad, n, d);
    if (gmax == 0.0) break;
    StepOnSphere(&c, grad, n, d, opt.step * (1.0 - 0.9 * double(it) / opt.iterations) / gmax);
    fill_gram();
  }
  out.bound_end = PairwiseBound(gram, n, d, opt, pick, rng, nullptr);
  out.code.assign(c.begin(), c.end());
  return out;
}

Result<std::vector<float>> DesignedCodebook(uint32_t n, uint32_t d, const CodeDesign& design, Rng& rng) {
  if (Status s = design.Validate(n, d); !s.ok()) return s;
  Result<std::vector<float>> base = PopularFirstCodebook(n, d, design.private_dims, rng);
  if (design.low_coherence) {
    LowCoherenceOptions lc;
    lc.private_dims = design.private_dims;
    base = LowCoherenceCodebook(n, d, lc, rng);
  }
  if (!base.ok() || !design.pairwise_snr_db) return base;
  PairwiseErrorOptions pw;
  pw.popularity = ZipfPopularity(n, design.pairwise_zipf);
  pw.snr_db = *design.pairwise_snr_db;
  pw.per_node = design.pairwise_per_node;
  auto r = PairwiseErrorCodebook(std::move(base).value(), n, d, pw, rng);
  if (!r.ok()) return r.status();
  return std::move(r.value().code);
}

}  // namespace edgebed
