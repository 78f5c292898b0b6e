#include "channel/channel_config.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "channel/modem.h"

namespace edgebed {
namespace {

Status Range(const char* field, double v, double lo, double hi, bool lo_open = false) {
  const bool below = lo_open ? !(v > lo) : !(v >= lo);
  if (std::isfinite(v) && !below && v <= hi) return Status::Ok();
  std::ostringstream m;
  m << "channel." << field << " = " << v << " is out of range " << (lo_open ? "(" : "[") << lo << ", " << hi << "]";
  return Status::InvalidArgument(m.str());
}

Status OneOf(const char* field, const std::string& v, const std::vector<std::string>& allowed) {
  if (std::find(allowed.begin(), allowed.end(), v) != allowed.end()) return Status::Ok();
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  return Status::InvalidArgument(std::string("channel.") + field + " = '" + v + "' is not allowed; allowed: " + list);
}

}  // namespace

double ChannelConfig::snr_linear() const { return std::pow(10.0, snr_db / 10.0); }

Status ChannelConfig::Validate() const {
  EDGEBED_RETURN_IF_ERROR(OneOf("uplink", uplink, {"ideal", "digital", "analog_ota", "digital_ota"}));
  EDGEBED_RETURN_IF_ERROR(OneOf("snr_reference", snr_reference, {"node", "sum"}));
  if (uplink == "digital_ota" && relay_nodes > 0)
    return Status::InvalidArgument("channel.relay_nodes = " + std::to_string(relay_nodes) +
                                   ": digital OTA runs inside the server only; allowed 0 with uplink = digital_ota");
  EDGEBED_RETURN_IF_ERROR(Range("snr_db", snr_db, -30.0, 60.0));
  EDGEBED_RETURN_IF_ERROR(OneOf("fading", fading, {"none", "rayleigh", "rician"}));
  EDGEBED_RETURN_IF_ERROR(Range("rician_k_db", rician_k_db, -20.0, 40.0));
  EDGEBED_RETURN_IF_ERROR(Range("path_loss_exponent", path_loss_exponent, 1.0, 8.0));
  EDGEBED_RETURN_IF_ERROR(Range("reference_distance_m", reference_distance_m, 0.0, 1e6, true));
  EDGEBED_RETURN_IF_ERROR(Range("distance_min_m", distance_min_m, 0.0, 1e6, true));
  EDGEBED_RETURN_IF_ERROR(Range("distance_max_m", distance_max_m, distance_min_m, 1e6));
  EDGEBED_RETURN_IF_ERROR(Range("carrier_offset", carrier_offset, 0.0, 0.5));
  EDGEBED_RETURN_IF_ERROR(Range("symbol_rate_hz", symbol_rate_hz, 0.0, 1e12, true));
  EDGEBED_RETURN_IF_ERROR(Range("tx_power_w", tx_power_w, 0.0, 1e3, true));
  EDGEBED_RETURN_IF_ERROR(OneOf("modulation", modulation, ModulationNames()));
  EDGEBED_RETURN_IF_ERROR(OneOf("fec", fec, FecNames()));
  if (packet_bytes < 16 || packet_bytes > 65536 || packet_bytes % 4 != 0)
    return Status::InvalidArgument("channel.packet_bytes = " + std::to_string(packet_bytes) +
                                   " must be a multiple of 4 in [16, 65536]");
  EDGEBED_RETURN_IF_ERROR(Range("max_retransmissions", max_retransmissions, 0, 100));
  EDGEBED_RETURN_IF_ERROR(Range("gain_threshold", gain_threshold, 0.0, 100.0));
  return Status::Ok();
}

}  // namespace edgebed
