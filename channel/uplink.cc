#include "channel/uplink.h"

#include <cmath>

#include "channel/analog_ota.h"
#include "channel/digital_uplink.h"
#include "codecs/rng.h"

namespace edgebed {

void LinkAccounting::AddNode(uint32_t node, const NodeLinkStats& s) {
  payload_bits += s.payload_bits;
  tx_energy_j += s.tx_energy_j;
  lost_packets += s.lost_packets;
  retransmissions += s.retransmissions;
  per_node[node] = s;
}

Status Uplink::DoCarry(uint32_t, uint32_t, std::vector<float>*, uint64_t, LinkAccounting*) {
  return Status::InvalidArgument(Describe() + " superposes updates; it carries no single update");
}

Result<OtaOutput> Uplink::DoSuperpose(uint32_t, const std::vector<OtaInput>&, LinkAccounting*) {
  return Status::InvalidArgument(Describe() + " is orthogonal; it does not superpose updates");
}

Status IdealUplink::DoCarry(uint32_t node, uint32_t, std::vector<float>*, uint64_t payload_bytes,
                            LinkAccounting* acc) {
  NodeLinkStats s;
  s.payload_bits = payload_bytes * 8;
  acc->AddNode(node, s);
  return Status::Ok();
}

std::vector<double> NodeDistances(const ChannelConfig& cfg, uint32_t num_nodes, uint64_t seed) {
  std::vector<double> d(num_nodes);
  for (uint32_t k = 0; k < num_nodes; ++k) {
    FastRng r(DeriveSeed(seed, "node-distance", k));
    d[k] = cfg.distance_min_m + (cfg.distance_max_m - cfg.distance_min_m) * r.Uniform();
  }
  return d;
}

Result<std::unique_ptr<Uplink>> MakeUplink(const ChannelConfig& cfg, uint32_t num_nodes, uint64_t seed) {
  EDGEBED_RETURN_IF_ERROR(cfg.Validate());
  if (cfg.uplink == "ideal") return std::unique_ptr<Uplink>(new IdealUplink());
  if (cfg.uplink == "digital") {
    auto d = DigitalUplink::Create(cfg, num_nodes, seed);
    if (!d.ok()) return d.status();
    return std::unique_ptr<Uplink>(std::move(d.value()));
  }
  return std::unique_ptr<Uplink>(new AnalogOtaUplink(cfg, num_nodes, seed));
}

}  // namespace edgebed
