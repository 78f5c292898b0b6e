// Analog over-the-air aggregation (AirComp; Zhu, Wang, Huang, arXiv 1812.11494). In a round every
// selected node draws its block-fading coefficient h_k; nodes with |h_k|^2 < gain_threshold stay
// silent; the others normalise their update with a common mean and deviation (side information on
// the error-free control channel), pre-invert their channel (p_k = sqrt(rho0) conj(h_k) / |h_k|^2,
// rho0 = P_max * min over active |h_k|^2 so no node exceeds P_max), and all transmit at once. The
// channel sums and adds noise of power N0 = P_max / SNR; the server rescales by sqrt(rho0) K_a.
// The estimate of the mean has error power N0 / (rho0 K_a^2) per complex symbol.
#pragma once
#include <vector>

#include "channel/gaussian.h"
#include "channel/uplink.h"

namespace edgebed {

// y[i] = sum_k gains[k] * x[k][i] + sigma * z[i], z ~ CN(0, 1): K device signals superposed with their
// (block) channel coefficients and receiver noise. The kernel the OTA simulation spends its time in.
void SuperposeSignals(const std::vector<const cfloat*>& x, const std::vector<cfloat>& gains, size_t n,
                      float noise_sigma, ComplexGaussian& noise, cfloat* y);

// Block fading and truncated channel inversion, shared by analog and digital OTA: one draw per node
// and round (seeded by both), nodes with |h|^2 below channel.gain_threshold silent, the others
// received at the common power rho0 = P_max * min over active |h|^2 (no node exceeds P_max).
class OtaPowerControl {
 public:
  OtaPowerControl(const ChannelConfig& cfg, uint32_t num_nodes, uint64_t seed);
  cfloat Fading(uint32_t node, uint32_t round) const;  // path gain included
  double ExpectedGain(uint32_t node, uint32_t round) const;
  double path_gain(uint32_t node) const { return path_gain_[node]; }
  uint32_t num_nodes() const { return static_cast<uint32_t>(path_gain_.size()); }
  struct Round {
    std::vector<cfloat> h;       // per input node
    std::vector<size_t> active;  // positions (into the input list) above the threshold
    double rho0 = 0.0;           // common receive power [W]; 0 when nobody is active
  };
  Round Draw(const std::vector<uint32_t>& nodes, uint32_t round) const;

 private:
  ChannelConfig cfg_;
  uint64_t seed_;
  std::vector<double> path_gain_;
};

class AnalogOtaUplink final : public Uplink {
 public:
  AnalogOtaUplink(const ChannelConfig& cfg, uint32_t num_nodes, uint64_t seed);
  std::string Describe() const override;
  bool superposes() const override { return true; }

 private:
  Result<OtaOutput> DoSuperpose(uint32_t round, const std::vector<OtaInput>& inputs, LinkAccounting* acc) override;
  double DoExpectedGain(uint32_t node, uint32_t round) const override { return power_.ExpectedGain(node, round); }
  ChannelConfig cfg_;
  uint64_t seed_;
  OtaPowerControl power_;
};

}  // namespace edgebed
