// Devices as the simulation sees them: how fast they train, how fast they talk, what they draw.
// Simulated nodes run on a virtual clock driven by these figures; the server predicts with them.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "codecs/rng.h"
#include "codecs/status.h"

namespace edgebed {

struct DeviceProfile {
  std::string name = "measured";
  double train_gflops = 0.0;     // sustained training throughput [GFLOP/s]; 0 = measured wall time
  double memory_mb = 0.0;
  double uplink_bps = 0.0;       // 0 = not modelled
  double downlink_bps = 0.0;
  double tx_power_w = 0.0;
  double compute_power_w = 0.0;
  double ms_per_sample = 0.0;    // FedScale-style: training ms per sample and epoch; > 0 overrides train_gflops
  Status Validate(const std::string& where) const;  // names where.field on error
  bool operator==(const DeviceProfile& o) const {
    return name == o.name && train_gflops == o.train_gflops && memory_mb == o.memory_mb && uplink_bps == o.uplink_bps &&
           downlink_bps == o.downlink_bps && tx_power_w == o.tx_power_w && compute_power_w == o.compute_power_w &&
           ms_per_sample == o.ms_per_sample;
  }
};

// DeviceProfile <-> the wire's join.profile (the one place the two are mapped).
namespace wire { class DeviceProfile; }
void ToWire(const DeviceProfile& p, bool simulated, wire::DeviceProfile* out);
DeviceProfile FromWire(const wire::DeviceProfile& p);

// Ready profiles: rpi4, pi-zero-2, phone, server (figures and their sources in device_profile.cc).
Result<DeviceProfile> ReadyProfile(const std::string& name);
const std::vector<std::string>& ReadyProfileNames();

// "rpi4:0.5,phone:0.3,pi-zero-2:0.2": a mix of profiles by share, ready ones or those in `custom`
// (a scenario's [profiles.NAME] tables). `field` names the setting in errors.
Result<std::vector<std::pair<DeviceProfile, double>>> ParseProfileMix(
    const std::string& text, const std::string& field, const std::map<std::string, DeviceProfile>& custom = {});
// The profile of node `index`, drawn from the mix with the run's seed (the same on every machine).
const DeviceProfile& AssignProfile(const std::vector<std::pair<DeviceProfile, double>>& mix, uint64_t seed,
                                   uint32_t index);

// Virtual seconds of one round on a device before its upload: model download + local training of
// `samples` x `epochs`, at ms_per_sample when set, else at the FLOPs of training one sample
// (Learner::TrainFlops: forward + backward where layers train) over train_gflops.
struct VirtualCost {
  double download_s = 0.0, compute_s = 0.0, compute_energy_j = 0.0;
  double total_s() const { return download_s + compute_s; }
};
VirtualCost PredictRound(const DeviceProfile& p, uint64_t model_bytes, int64_t train_flops, uint64_t samples,
                         uint32_t epochs);

}  // namespace edgebed
