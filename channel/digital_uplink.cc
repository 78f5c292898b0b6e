#include "channel/digital_uplink.h"

#include <complex>
// clang-format off
#include <liquid/liquid.h>
// clang-format on

#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>

#include "channel/fading.h"

namespace edgebed {

Result<std::unique_ptr<PacketLink>> PacketLink::Create(const ChannelConfig& cfg) {
  auto modem = Modem::Create(cfg.modulation);
  if (!modem.ok()) return modem.status();
  auto pk = Packetizer::Create(cfg.packet_bytes, cfg.fec);
  if (!pk.ok()) return pk.status();
  std::unique_ptr<PacketLink> l(new PacketLink());
  l->cfg_ = cfg;
  l->modem_ = std::move(modem.value());
  l->packetizer_ = std::move(pk.value());
  const uint32_t bits = l->packetizer_->encoded_bytes() * 8, bps = l->modem_->bps();
  l->symbols_ = (bits + bps - 1) / bps;
  l->coded_.resize(l->packetizer_->encoded_bytes());
  l->sym_in_.resize(l->symbols_);
  l->sym_out_.resize(l->symbols_);
  l->rx_coded_.resize((static_cast<size_t>(l->symbols_) * bps + 7) / 8);
  return l;
}

bool PacketLink::SendOnce(const uint8_t* payload, uint8_t* decoded, double snr, cfloat h, ComplexGaussian& noise) {
  if (std::norm(h) < 1e-12f) return false;  // a fade this deep carries nothing
  packetizer_->Encode(payload, coded_.data());
  const unsigned bps = modem_->bps();
  unsigned written = 0;
  liquid_repack_bytes(coded_.data(), 8, packetizer_->encoded_bytes(), sym_in_.data(), bps, symbols_, &written);
  TransmitSymbols(sym_in_.data(), sym_out_.data(), symbols_, snr, h, noise);
  liquid_repack_bytes(sym_out_.data(), bps, symbols_, rx_coded_.data(), 8,
                      static_cast<unsigned>(rx_coded_.size()), &written);
  return packetizer_->Decode(rx_coded_.data(), decoded);
}

void PacketLink::TransmitSymbols(const uint8_t* in, uint8_t* out, size_t n, double snr, cfloat h,
                                 ComplexGaussian& noise) {
  // Receive SNR = |h|^2 * snr: noise power N0 = Es / snr against a signal of power |h|^2 Es.
  const float sigma = static_cast<float>(std::sqrt(modem_->symbol_energy() / snr));
  const cfloat inv_h = 1.0f / h;
  const bool cfo = cfg_.carrier_offset > 0.0;
  const cfloat step = std::polar(1.0f, static_cast<float>(cfg_.carrier_offset));
  cfloat rot(1.0f, 0.0f);
  for (size_t i = 0; i < n; ++i) {
    cfloat r = h * modem_->Modulate(in[i]);
    if (cfo) {
      r *= rot;  // the receiver's channel estimate at the packet start does not track the drift
      rot *= step;
    }
    r += sigma * noise.Next();
    out[i] = static_cast<uint8_t>(modem_->Demodulate(r * inv_h));
  }
}

Result<std::unique_ptr<DigitalUplink>> DigitalUplink::Create(const ChannelConfig& cfg, uint32_t num_nodes,
                                                             uint64_t seed) {
  auto link = PacketLink::Create(cfg);
  if (!link.ok()) return link.status();
  std::unique_ptr<DigitalUplink> u(new DigitalUplink());
  u->cfg_ = cfg;
  u->seed_ = seed;
  u->link_ = std::move(link.value());
  for (double d : NodeDistances(cfg, num_nodes, seed))
    u->path_gain_.push_back(PathGain(d, cfg.reference_distance_m, cfg.path_loss_exponent));
  return u;
}

std::string DigitalUplink::Describe() const {
  std::ostringstream s;
  s << "digital " << cfg_.modulation << " + " << cfg_.fec << " + CRC-32, " << cfg_.packet_bytes << "-byte packets, "
    << cfg_.fading << " fading, " << cfg_.snr_db << " dB";
  return s.str();
}

Status DigitalUplink::DoCarry(uint32_t node, uint32_t round, std::vector<float>* values, uint64_t,
                              LinkAccounting* acc) {
  if (node >= path_gain_.size())
    return Status::InvalidArgument("node index " + std::to_string(node) + " has no link (nodes: " +
                                   std::to_string(path_gain_.size()) + ")");
  ComplexGaussian g(DeriveSeed(seed_, "digital-uplink", node, round));
  const double snr = cfg_.snr_linear() * path_gain_[node];
  const size_t per_packet = cfg_.packet_bytes / sizeof(float);
  const size_t n = values->size();
  const size_t packets = (n + per_packet - 1) / per_packet;
  std::vector<uint8_t> payload(cfg_.packet_bytes), decoded(cfg_.packet_bytes);
  NodeLinkStats s;
  s.payload_bits = static_cast<uint64_t>(n) * 32;
  s.snr_db = 10.0 * std::log10(snr);
  uint64_t sent = 0;
  for (size_t p = 0; p < packets; ++p) {
    const size_t lo = p * per_packet, count = std::min(per_packet, n - lo);
    std::memset(payload.data(), 0, payload.size());
    std::memcpy(payload.data(), values->data() + lo, count * sizeof(float));
    bool ok = false;
    for (uint32_t attempt = 0; attempt <= cfg_.max_retransmissions && !ok; ++attempt) {
      const cfloat h = DrawFading(cfg_.fading, cfg_.rician_k_db, g);
      ok = link_->SendOnce(payload.data(), decoded.data(), snr, h, g);
      ++sent;
      if (attempt > 0) ++s.retransmissions;
    }
    if (ok) {
      std::memcpy(values->data() + lo, decoded.data(), count * sizeof(float));
    } else {
      std::fill(values->begin() + static_cast<std::ptrdiff_t>(lo),
                values->begin() + static_cast<std::ptrdiff_t>(lo + count), std::numeric_limits<float>::quiet_NaN());
      ++s.lost_packets;
    }
  }
  s.packets = sent;
  s.coded_bits = sent * link_->coded_bits_per_packet();
  s.channel_uses = static_cast<double>(sent) * link_->symbols_per_packet();
  s.airtime_s = s.channel_uses / cfg_.symbol_rate_hz;
  s.tx_energy_j = cfg_.tx_power_w * s.airtime_s;
  acc->AddNode(node, s);
  acc->channel_uses += s.channel_uses;
  acc->airtime_s += s.airtime_s;
  return Status::Ok();
}

}  // namespace edgebed
