#include "channel/analog_ota.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "channel/fading.h"

namespace edgebed {

void SuperposeSignals(const std::vector<const cfloat*>& x, const std::vector<cfloat>& gains, size_t n,
                      float noise_sigma, ComplexGaussian& noise, cfloat* y) {
  // Block-wise so the K inputs and the output stay in cache.
  constexpr size_t kBlock = 1024;
  for (size_t lo = 0; lo < n; lo += kBlock) {
    const size_t hi = std::min(n, lo + kBlock);
    for (size_t i = lo; i < hi; ++i) y[i] = noise_sigma * noise.Next();
    for (size_t k = 0; k < x.size(); ++k) {
      const float gr = gains[k].real(), gi = gains[k].imag();
      const float* xk = reinterpret_cast<const float*>(x[k]);
      float* yo = reinterpret_cast<float*>(y);
      for (size_t i = lo; i < hi; ++i) {
        const float xr = xk[2 * i], xi = xk[2 * i + 1];
        yo[2 * i] += gr * xr - gi * xi;
        yo[2 * i + 1] += gr * xi + gi * xr;
      }
    }
  }
}

OtaPowerControl::OtaPowerControl(const ChannelConfig& cfg, uint32_t num_nodes, uint64_t seed) : cfg_(cfg), seed_(seed) {
  for (double d : NodeDistances(cfg, num_nodes, seed))
    path_gain_.push_back(PathGain(d, cfg.reference_distance_m, cfg.path_loss_exponent));
}

cfloat OtaPowerControl::Fading(uint32_t node, uint32_t round) const {
  ComplexGaussian g(DeriveSeed(seed_, "ota-fading", node, round));
  return static_cast<float>(std::sqrt(path_gain_[node])) * DrawFading(cfg_.fading, cfg_.rician_k_db, g);
}

double OtaPowerControl::ExpectedGain(uint32_t node, uint32_t round) const {
  return node < path_gain_.size() ? std::norm(Fading(node, round)) : 0.0;
}

OtaPowerControl::Round OtaPowerControl::Draw(const std::vector<uint32_t>& nodes, uint32_t round) const {
  Round r;
  r.h.resize(nodes.size());
  double min_gain = INFINITY;
  for (size_t k = 0; k < nodes.size(); ++k) {
    r.h[k] = Fading(nodes[k], round);
    const double gain = std::norm(r.h[k]);
    if (gain >= cfg_.gain_threshold && gain > 0.0) {
      r.active.push_back(k);
      min_gain = std::min(min_gain, gain);
    }
  }
  if (!r.active.empty()) r.rho0 = cfg_.tx_power_w * min_gain;
  return r;
}

AnalogOtaUplink::AnalogOtaUplink(const ChannelConfig& cfg, uint32_t num_nodes, uint64_t seed)
    : cfg_(cfg), seed_(seed), power_(cfg, num_nodes, seed) {}

std::string AnalogOtaUplink::Describe() const {
  std::ostringstream s;
  s << "analog OTA, " << cfg_.fading << " fading, truncation |h|^2 >= " << cfg_.gain_threshold << ", " << cfg_.snr_db
    << " dB";
  return s.str();
}

Result<OtaOutput> AnalogOtaUplink::DoSuperpose(uint32_t round, const std::vector<OtaInput>& inputs,
                                               LinkAccounting* acc) {
  if (inputs.empty()) return Status::InvalidArgument("analog OTA: no update to superpose");
  const size_t d = inputs[0].values->size();
  std::vector<uint32_t> nodes;
  for (const auto& in : inputs) {
    if (in.values->size() != d) return Status::InvalidArgument("analog OTA: updates differ in length");
    if (in.node >= power_.num_nodes()) return Status::InvalidArgument("analog OTA: node index out of range");
    nodes.push_back(in.node);
  }
  // 1. Channels, truncation, common receive power rho0 (no node exceeds P_max).
  const OtaPowerControl::Round pc = power_.Draw(nodes, round);
  const std::vector<cfloat>& h = pc.h;
  const std::vector<size_t>& active = pc.active;
  OtaOutput out;
  out.active = static_cast<uint32_t>(active.size());
  out.noise_power = cfg_.tx_power_w / cfg_.snr_linear();
  const size_t symbols = (d + 1) / 2;
  acc->channel_uses += static_cast<double>(symbols);
  acc->airtime_s += static_cast<double>(symbols) / cfg_.symbol_rate_hz;
  acc->control_bits += inputs.size() * 65 + 64;  // active flag + (mean, var) up; common (mean, sd) down
  for (size_t k = 0; k < inputs.size(); ++k) {
    NodeLinkStats s;
    s.payload_bits = static_cast<uint64_t>(d) * 32;
    s.snr_db = 10.0 * std::log10(cfg_.snr_linear() * power_.path_gain(inputs[k].node));
    s.active = false;
    acc->AddNode(inputs[k].node, s);
  }
  if (active.empty())
    return Status::Unavailable("analog OTA: every node's |h|^2 fell below channel.gain_threshold = " +
                               std::to_string(cfg_.gain_threshold));
  out.rho0 = pc.rho0;

  // 2. Common normalisation from each active node's mean and variance (control channel).
  double mu = 0.0, second = 0.0;
  for (size_t k : active) {
    double m = 0.0, m2 = 0.0;
    for (float v : *inputs[k].values) {
      m += v;
      m2 += static_cast<double>(v) * v;
    }
    mu += m / static_cast<double>(d);
    second += m2 / static_cast<double>(d);
  }
  mu /= static_cast<double>(active.size());
  second /= static_cast<double>(active.size());
  const double sd = std::sqrt(std::max(second - mu * mu, 0.0));
  out.scale = sd > 0.0 ? sd : 1.0;

  // 3. Pre-inverted transmission of all active nodes at once, in chunks; the channel sums and adds noise.
  const float inv = static_cast<float>(1.0 / (out.scale * std::sqrt(2.0)));
  const float fmu = static_cast<float>(mu);
  const double sqrt_rho0 = std::sqrt(out.rho0);
  if (cfg_.snr_reference == "sum") {
    // SNR of the received superposed signal: N0 = rho0 * mean |sum_k x_k|^2 per symbol / SNR.
    double p = 0.0;
    for (size_t j = 0; j < d; ++j) {
      double sum = 0.0;
      for (size_t k : active) sum += ((*inputs[k].values)[j] - fmu) * inv;
      p += sum * sum;
    }
    out.noise_power = out.rho0 * p / static_cast<double>(symbols) / cfg_.snr_linear();
  }
  std::vector<cfloat> gains;  // h_k * p_k, = sqrt(rho0) up to rounding
  std::vector<double> power;  // |p_k|^2
  for (size_t k : active) {
    const cfloat p = static_cast<float>(sqrt_rho0 / std::norm(h[k])) * std::conj(h[k]);
    gains.push_back(h[k] * p);
    power.push_back(std::norm(p));
  }
  std::vector<double> energy(active.size(), 0.0);
  ComplexGaussian noise(DeriveSeed(seed_, "ota-noise", round));
  constexpr size_t kChunk = 4096;
  std::vector<std::vector<cfloat>> tx(active.size(), std::vector<cfloat>(kChunk));
  std::vector<const cfloat*> ptrs;
  for (auto& t : tx) ptrs.push_back(t.data());
  std::vector<cfloat> y(kChunk);
  out.mean.resize(d);
  const float rescale = static_cast<float>(out.scale * std::sqrt(2.0) / (sqrt_rho0 * static_cast<double>(active.size())));
  for (size_t lo = 0; lo < symbols; lo += kChunk) {
    const size_t n = std::min(kChunk, symbols - lo);
    for (size_t a = 0; a < active.size(); ++a) {
      const float* v = inputs[active[a]].values->data();
      double e = 0.0;
      for (size_t i = 0; i < n; ++i) {
        const size_t j = 2 * (lo + i);
        const float re = (v[j] - fmu) * inv;
        const float im = j + 1 < d ? (v[j + 1] - fmu) * inv : 0.0f;
        tx[a][i] = cfloat(re, im);
        e += static_cast<double>(re) * re + static_cast<double>(im) * im;
      }
      energy[a] += e * power[a];
    }
    SuperposeSignals(ptrs, gains, n, static_cast<float>(std::sqrt(out.noise_power)), noise, y.data());
    for (size_t i = 0; i < n; ++i) {
      const size_t j = 2 * (lo + i);
      out.mean[j] = y[i].real() * rescale + fmu;
      if (j + 1 < d) out.mean[j + 1] = y[i].imag() * rescale + fmu;
    }
  }
  const double t_sym = 1.0 / cfg_.symbol_rate_hz;
  for (size_t a = 0; a < active.size(); ++a) {
    NodeLinkStats& s = acc->per_node[inputs[active[a]].node];
    s.active = true;
    s.channel_uses = static_cast<double>(symbols);
    s.airtime_s = static_cast<double>(symbols) * t_sym;
    s.tx_energy_j = energy[a] * t_sym;
    acc->tx_energy_j += s.tx_energy_j;
  }
  return out;
}

}  // namespace edgebed
