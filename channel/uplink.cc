#include "channel/uplink.h"

namespace edgebed {

void LinkAccounting::Add(const LinkAccounting& o) {
  payload_bits += o.payload_bits;
  channel_uses += o.channel_uses;
  airtime_s += o.airtime_s;
  tx_energy_j += o.tx_energy_j;
}

Status IdealUplink::DoCarry(uint32_t, std::vector<float>*, uint64_t payload_bytes, LinkAccounting* acc) {
  acc->payload_bits += payload_bytes * 8;
  return Status::Ok();
}

Result<std::unique_ptr<Uplink>> MakeUplink(const std::string& kind) {
  if (kind == "ideal") return std::unique_ptr<Uplink>(new IdealUplink());
  return Status::InvalidArgument("channel.uplink = '" + kind + "' is unknown; allowed: ideal");
}

}  // namespace edgebed
