// Small-scale block fading and large-scale path loss.
#pragma once
#include <string>

#include "channel/gaussian.h"

namespace edgebed {

// One block-fading coefficient with E|h|^2 = 1: "none" -> 1, "rayleigh" -> CN(0, 1),
// "rician" -> LOS of power K/(K+1) plus CN(0, 1/(K+1)) scatter (K from k_db).
cfloat DrawFading(const std::string& kind, double rician_k_db, ComplexGaussian& g);

// Large-scale power gain [linear] at distance d: (d / d_ref)^-exponent, 1 at or inside d_ref.
double PathGain(double distance_m, double reference_distance_m, double exponent);

}  // namespace edgebed
