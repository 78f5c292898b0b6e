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

class AnalogOtaUplink final : public Uplink {
 public:
  AnalogOtaUplink(const ChannelConfig& cfg, uint32_t num_nodes, uint64_t seed);
  std::string Describe() const override;
  bool superposes() const override { return true; }

 private:
  Result<OtaOutput> DoSuperpose(uint32_t round, const std::vector<OtaInput>& inputs, LinkAccounting* acc) override;
  double DoExpectedGain(uint32_t node, uint32_t round) const override;
  cfloat Fading(uint32_t node, uint32_t round) const;  // the round's draw, as DoSuperpose sees it
  ChannelConfig cfg_;
  uint64_t seed_;
  std::vector<double> path_gain_;
};

}  // namespace edgebed
