#include "channel/fading.h"

#include <algorithm>

namespace edgebed {

cfloat DrawFading(const std::string& kind, double rician_k_db, ComplexGaussian& g) {
  if (kind == "rayleigh") return g.Next();
  if (kind == "rician") {
    const double k = std::pow(10.0, rician_k_db / 10.0);
    const double los = std::sqrt(k / (k + 1.0)), scatter = std::sqrt(1.0 / (k + 1.0));
    const double phase = 2.0 * M_PI * g.uniform().Uniform();
    return cfloat(static_cast<float>(los * std::cos(phase)), static_cast<float>(los * std::sin(phase))) +
           static_cast<float>(scatter) * g.Next();
  }
  return {1.0f, 0.0f};
}

double PathGain(double distance_m, double reference_distance_m, double exponent) {
  return std::pow(std::max(distance_m, reference_distance_m) / reference_distance_m, -exponent);
}

}  // namespace edgebed
