#include "channel/digital_ota.h"

#include <cmath>
#include <sstream>

namespace edgebed {

DigitalOtaUplink::DigitalOtaUplink(const ChannelConfig& cfg, uint32_t num_nodes, uint64_t seed)
    : cfg_(cfg), seed_(seed), power_(cfg, num_nodes, seed) {}

std::string DigitalOtaUplink::Describe() const {
  std::ostringstream s;
  s << "digital OTA (shared codebook), " << cfg_.fading << " fading, truncation |h|^2 >= " << cfg_.gain_threshold << ", "
    << cfg_.snr_db << " dB " << (cfg_.snr_reference == "sum" ? "of the superposed signal" : "per node");
  return s.str();
}

Result<UraOutput> DigitalOtaUplink::DoSuperposeCodewords(uint32_t round, const std::vector<UraInput>& inputs,
                                                         const UraCode& code, LinkAccounting* acc) {
  if (inputs.empty()) return Status::InvalidArgument("digital OTA: no update to superpose");
  if (!code.codebook || code.codebook->size() != static_cast<size_t>(code.n) * code.d || code.d < 2)
    return Status::InvalidArgument("digital OTA: the URA codebook is not n x d");
  const size_t S = inputs[0].indices->size();
  std::vector<uint32_t> nodes;
  for (const auto& in : inputs) {
    if (in.indices->size() != S) return Status::InvalidArgument("digital OTA: nodes sent different numbers of blocks");
    if (in.node >= power_.num_nodes()) return Status::InvalidArgument("digital OTA: node index out of range");
    for (uint32_t i : *in.indices)
      if (i >= code.n) return Status::InvalidArgument("digital OTA: an index is >= the codebook size");
    nodes.push_back(in.node);
  }
  const uint32_t d = code.d;
  const OtaPowerControl::Round pc = power_.Draw(nodes, round);
  // d real entries per block = d/2 complex channel uses, the same for every node (they overlap).
  const double symbols = static_cast<double>(S) * d / 2.0, t_sym = 1.0 / cfg_.symbol_rate_hz;
  acc->channel_uses += symbols;
  acc->airtime_s += symbols * t_sym;
  acc->control_bits += inputs.size() + 64;  // active flag up; K and the noise estimate are not sent
  for (size_t k = 0; k < inputs.size(); ++k) {
    NodeLinkStats s;
    s.payload_bits = static_cast<uint64_t>(S) * code.index_bits;
    s.snr_db = 10.0 * std::log10(cfg_.snr_linear() * power_.path_gain(inputs[k].node));
    s.active = false;
    acc->AddNode(inputs[k].node, s);
  }
  if (pc.active.empty())
    return Status::Unavailable("digital OTA: every node's |h|^2 fell below channel.gain_threshold = " +
                               std::to_string(cfg_.gain_threshold));
  UraOutput out;
  out.rho0 = pc.rho0;
  out.noise_power = cfg_.tx_power_w / cfg_.snr_linear();
  out.y.assign(S * d, 0.0f);
  const float* C = code.codebook->data();
  for (size_t k : pc.active) {
    const std::vector<uint32_t>& idx = *inputs[k].indices;
    for (size_t s = 0; s < S; ++s) {
      const float* c = C + static_cast<size_t>(idx[s]) * d;
      float* y = &out.y[s * d];
      for (uint32_t j = 0; j < d; ++j) y[j] += c[j];
    }
    NodeLinkStats& st = acc->per_node[inputs[k].node];
    st.active = true;
    st.channel_uses = symbols;
    st.airtime_s = symbols * t_sym;
    st.tx_energy_j = pc.rho0 / std::norm(pc.h[k]) * symbols * t_sym;  // |p_k|^2 per symbol
    acc->tx_energy_j += st.tx_energy_j;
    out.active_nodes.push_back(inputs[k].node);
  }
  // Receiver noise, normalised by the common gain sqrt(rho0 d / 2).
  ComplexGaussian noise(DeriveSeed(seed_, "ota-noise", round));
  const double node_var = out.noise_power / (out.rho0 * d);
  double total = 0.0;
  for (size_t s = 0; s < S; ++s) {
    float* y = &out.y[s * d];
    double var = node_var;
    if (cfg_.snr_reference == "sum") {
      double p = 0.0;
      for (uint32_t j = 0; j < d; ++j) p += static_cast<double>(y[j]) * y[j];
      var = p / d / cfg_.snr_linear();
    }
    total += var;
    const float sd = static_cast<float>(std::sqrt(2.0 * var));  // each component of CN(0, 1) has variance 1/2
    for (uint32_t j = 0; j + 1 < d; j += 2) {
      const cfloat z = noise.Next();
      y[j] += sd * z.real();
      y[j + 1] += sd * z.imag();
    }
    if (d % 2) y[d - 1] += sd * noise.Next().real();
  }
  out.noise_var = total / static_cast<double>(S);
  return out;
}

}  // namespace edgebed
