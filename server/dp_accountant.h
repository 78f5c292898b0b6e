// Privacy accounting for DP-FedAvg with central Gaussian noise (McMahan et al. 2018; Andrew et al.
// 2021): the Renyi DP of the sampled Gaussian mechanism (Mironov, Talwar, Zhang 2019, integer orders:
// A_a = sum_k C(a, k) (1 - q)^(a - k) q^k exp((k^2 - k) / (2 z^2)), RDP(a) = log(A_a) / (a - 1)),
// composed over rounds and turned into (epsilon, delta): epsilon = min_a T RDP(a) + log(1 / delta) / (a - 1).
// q is the share of nodes sampled per round, z the noise multiplier (noise std / clipping norm).
#pragma once
#include <cstdint>

#include "codecs/status.h"

namespace edgebed {

// The RDP of one round at integer order `alpha` >= 2.
double SampledGaussianRdp(double q, double z, int alpha);

// Epsilon after `rounds` rounds at `delta`, minimised over the orders 2..256.
double DpEpsilon(double q, double z, uint64_t rounds, double delta);

// The smallest noise multiplier (to 0.1%) whose epsilon after `rounds` is at most `target_epsilon`;
// an error when even z = 1000 does not reach it.
[[nodiscard]] Result<double> NoiseForEpsilon(double q, uint64_t rounds, double delta, double target_epsilon);

}  // namespace edgebed
