#include "channel/uplink.h"

#include <cmath>

#include "channel/analog_ota.h"
#include "channel/digital_ota.h"
#include "channel/digital_uplink.h"
#include "codecs/edgebed.pb.h"
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

void ToLinkReport(uint32_t node, const NodeLinkStats& s, wire::LinkReport* r) {
  r->set_node_index(node);
  r->set_payload_bits(s.payload_bits);
  r->set_coded_bits(s.coded_bits);
  r->set_channel_uses(s.channel_uses);
  r->set_airtime_s(s.airtime_s);
  r->set_tx_energy_j(s.tx_energy_j);
  r->set_packets(s.packets);
  r->set_lost_packets(s.lost_packets);
  r->set_retransmissions(s.retransmissions);
  r->set_active(s.active);
  r->set_snr_db(s.snr_db);
}

NodeLinkStats FromLinkReport(const wire::LinkReport& r) {
  NodeLinkStats s;
  s.payload_bits = r.payload_bits();
  s.coded_bits = r.coded_bits();
  s.channel_uses = r.channel_uses();
  s.airtime_s = r.airtime_s();
  s.tx_energy_j = r.tx_energy_j();
  s.packets = r.packets();
  s.lost_packets = r.lost_packets();
  s.retransmissions = r.retransmissions();
  s.active = r.active();
  s.snr_db = r.snr_db();
  return s;
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
  if (cfg.uplink == "digital_ota") return std::unique_ptr<Uplink>(new DigitalOtaUplink(cfg, num_nodes, seed));
  return std::unique_ptr<Uplink>(new AnalogOtaUplink(cfg, num_nodes, seed));
}

}  // namespace edgebed
