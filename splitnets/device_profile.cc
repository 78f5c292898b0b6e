#include "splitnets/device_profile.h"

#include "codecs/edgebed.pb.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace edgebed {
namespace {

// Peak FLOP/s from the spec sheets (cores x clock x single-precision FLOPs per cycle with SIMD);
// the sustained share for small-batch training is edgebed's assumption (10-15% of peak on ARM CPUs,
// ~40% on x86: this machine trains the default CNN at ~50 GFLOP/s on 2 cores, see BENCHMARKS.md),
// to be replaced by measurement on a real device.
const DeviceProfile kProfiles[] = {
    // Raspberry Pi 4 Model B: 4x Cortex-A72 @ 1.5 GHz, 128-bit NEON (8 FLOP/cycle): 48 GFLOP/s peak;
    // 802.11ac Wi-Fi (~100 Mbit/s in practice); ~6.4 W under full load (Raspberry Pi product brief);
    // 20 dBm (0.1 W) Wi-Fi transmit power, the usual 2.4/5 GHz limit.
    {"rpi4", 5.0, 4096.0, 100e6, 100e6, 0.1, 6.4},
    // Raspberry Pi Zero 2 W: 4x Cortex-A53 @ 1 GHz (in-order): 32 GFLOP/s peak; 512 MB; 802.11n
    // 2.4 GHz single stream (~20 Mbit/s in practice); ~3 W under load.
    {"pi-zero-2", 2.0, 512.0, 20e6, 20e6, 0.1, 3.0},
    // A mid-range phone CPU (2 big ARM cores in use) on LTE: 23 dBm (0.2 W) UE power class 3
    // (3GPP TS 36.101); ~10 Mbit/s up, 30 Mbit/s down; ~3 W while training.
    {"phone", 10.0, 4096.0, 10e6, 30e6, 0.2, 3.0},
    // A 2-core x86 server like this machine on 1 Gbit/s Ethernet; ~65 W package power.
    {"server", 50.0, 24576.0, 1e9, 1e9, 0.0, 65.0},
};

std::string Names() {
  std::string s;
  for (const auto& p : kProfiles) s += (s.empty() ? "" : ", ") + p.name;
  return s;
}

}  // namespace

Status DeviceProfile::Validate(const std::string& where) const {
  auto check = [&](const char* f, double v) -> Status {
    if (std::isfinite(v) && v >= 0.0) return Status::Ok();
    std::ostringstream m;
    m << where << "." << f << " = " << v << " must be >= 0";
    return Status::InvalidArgument(m.str());
  };
  EDGEBED_RETURN_IF_ERROR(check("train_gflops", train_gflops));
  EDGEBED_RETURN_IF_ERROR(check("memory_mb", memory_mb));
  EDGEBED_RETURN_IF_ERROR(check("uplink_bps", uplink_bps));
  EDGEBED_RETURN_IF_ERROR(check("downlink_bps", downlink_bps));
  EDGEBED_RETURN_IF_ERROR(check("tx_power_w", tx_power_w));
  EDGEBED_RETURN_IF_ERROR(check("ms_per_sample", ms_per_sample));
  return check("compute_power_w", compute_power_w);
}

void ToWire(const DeviceProfile& p, bool simulated, wire::DeviceProfile* out) {
  out->set_name(p.name);
  out->set_train_gflops(p.train_gflops);
  out->set_memory_mb(p.memory_mb);
  out->set_uplink_bps(p.uplink_bps);
  out->set_downlink_bps(p.downlink_bps);
  out->set_tx_power_w(p.tx_power_w);
  out->set_compute_power_w(p.compute_power_w);
  out->set_ms_per_sample(p.ms_per_sample);
  out->set_simulated(simulated);
}

DeviceProfile FromWire(const wire::DeviceProfile& w) {
  DeviceProfile p;
  p.name = w.name().empty() ? "measured" : w.name();
  p.train_gflops = w.train_gflops();
  p.memory_mb = w.memory_mb();
  p.uplink_bps = w.uplink_bps();
  p.downlink_bps = w.downlink_bps();
  p.tx_power_w = w.tx_power_w();
  p.compute_power_w = w.compute_power_w();
  p.ms_per_sample = w.ms_per_sample();
  return p;
}

const std::vector<std::string>& ReadyProfileNames() {
  static const std::vector<std::string> v = [] {
    std::vector<std::string> n;
    for (const auto& p : kProfiles) n.push_back(p.name);
    return n;
  }();
  return v;
}

Result<DeviceProfile> ReadyProfile(const std::string& name) {
  for (const auto& p : kProfiles)
    if (p.name == name) return p;
  return Status::InvalidArgument("profile '" + name + "' is unknown; ready profiles: " + Names());
}

Result<std::vector<std::pair<DeviceProfile, double>>> ParseProfileMix(
    const std::string& text, const std::string& field, const std::map<std::string, DeviceProfile>& custom) {
  std::vector<std::pair<DeviceProfile, double>> mix;
  std::stringstream ss(text);
  double total = 0.0;
  for (std::string item; std::getline(ss, item, ',');) {
    if (item.empty()) continue;
    const auto colon = item.find(':');
    const std::string name = item.substr(0, colon);
    double share = 1.0;
    if (colon != std::string::npos) {
      try {
        share = std::stod(item.substr(colon + 1));
      } catch (...) {
        share = -1.0;
      }
    }
    if (!(share > 0.0) || !std::isfinite(share))
      return Status::InvalidArgument(field + ": share of '" + name + "' must be a number > 0");
    auto c = custom.find(name);
    if (c != custom.end()) {
      mix.push_back({c->second, share});
    } else {
      auto p = ReadyProfile(name);
      if (!p.ok()) return Status::InvalidArgument(field + ": " + p.status().message() + " (or define [profiles." + name + "])");
      mix.push_back({p.value(), share});
    }
    total += share;
  }
  if (mix.empty()) return Status::InvalidArgument(field + " is empty; e.g. \"rpi4:0.5,phone:0.5\"");
  for (auto& m : mix) m.second /= total;
  return mix;
}

const DeviceProfile& AssignProfile(const std::vector<std::pair<DeviceProfile, double>>& mix, uint64_t seed,
                                   uint32_t index) {
  Rng r = MakeRng(seed, "device-profile", index);
  const double u = std::uniform_real_distribution<double>(0.0, 1.0)(r);
  double cum = 0.0;
  for (const auto& m : mix) {
    cum += m.second;
    if (u < cum) return m.first;
  }
  return mix.back().first;
}

VirtualCost PredictRound(const DeviceProfile& p, uint64_t model_bytes, int64_t train_flops, uint64_t samples,
                         uint32_t epochs) {
  VirtualCost c;
  if (p.downlink_bps > 0) c.download_s = static_cast<double>(model_bytes) * 8.0 / p.downlink_bps;
  if (p.ms_per_sample > 0)
    c.compute_s = p.ms_per_sample * 1e-3 * static_cast<double>(samples) * epochs;
  else if (p.train_gflops > 0)
    c.compute_s = static_cast<double>(train_flops) * static_cast<double>(samples) * epochs /
                  (p.train_gflops * 1e9);
  c.compute_energy_j = p.compute_power_w * c.compute_s;
  return c;
}

}  // namespace edgebed
