#include "channel/byte_link.h"

#include <cmath>
#include <cstring>
#include <sstream>

#include "channel/digital_uplink.h"
#include "channel/fading.h"
#include "channel/uplink.h"
#include "codecs/rng.h"

namespace edgebed {

Result<BandwidthTrace> BandwidthTrace::Create(std::vector<RatePoint> points) {
  for (size_t i = 0; i < points.size(); ++i) {
    const std::string f = "split.bandwidth[" + std::to_string(i) + "]";
    if (i == 0 && points[i].t_s != 0.0) return Status::InvalidArgument(f + ".t_s must be 0 (the trace starts at 0)");
    if (i > 0 && !(points[i].t_s > points[i - 1].t_s))
      return Status::InvalidArgument(f + ".t_s = " + std::to_string(points[i].t_s) + " must be after the previous point's");
    if (!(points[i].kbps > 0.0 && points[i].kbps <= 1e7))
      return Status::InvalidArgument(f + ".kbps = " + std::to_string(points[i].kbps) + " is outside (0, 1e7]");
  }
  BandwidthTrace t;
  t.points_ = std::move(points);
  return t;
}

double BandwidthTrace::KbpsAt(double t_s) const {
  double kbps = points_.empty() ? 0.0 : points_.front().kbps;
  for (const auto& p : points_)
    if (p.t_s <= t_s) kbps = p.kbps;
  return kbps;
}

void ByteLinkStats::Add(const ByteLinkStats& o) {
  bytes += o.bytes;
  bit_errors += o.bit_errors;
  packets += o.packets;
  failed_packets += o.failed_packets;
  retransmissions += o.retransmissions;
  airtime_s += o.airtime_s;
}

Result<std::unique_ptr<ByteLink>> ByteLink::Create(const ChannelConfig& cfg, uint32_t num_nodes, uint64_t seed,
                                                   BandwidthTrace trace) {
  if (cfg.uplink != "ideal" && cfg.uplink != "digital")
    return Status::InvalidArgument("channel.uplink = \"" + cfg.uplink +
                                   "\" cannot carry a split network's activations; use ideal or digital");
  std::unique_ptr<ByteLink> l(new ByteLink());
  l->cfg_ = cfg;
  l->seed_ = seed;
  l->trace_ = std::move(trace);
  if (cfg.uplink == "digital") {
    auto link = PacketLink::Create(cfg);
    if (!link.ok()) return link.status();
    l->link_ = std::move(link.value());
  }
  for (double d : NodeDistances(cfg, num_nodes, seed))
    l->path_gain_.push_back(PathGain(d, cfg.reference_distance_m, cfg.path_loss_exponent));
  return l;
}

ByteLink::~ByteLink() = default;

std::string ByteLink::Describe() const {
  std::ostringstream s;
  if (link_) {
    s << "digital " << cfg_.modulation << " + " << cfg_.fec << " + CRC-32, " << cfg_.packet_bytes << "-byte packets, "
      << cfg_.fading << " fading, " << cfg_.snr_db << " dB, corrupted packets delivered";
  } else {
    s << "ideal (error-free)";
  }
  if (!trace_.empty()) s << ", rate from a bandwidth trace of " << trace_.points().size() << " points";
  return s.str();
}

Status ByteLink::Carry(uint32_t node, uint64_t a, uint64_t b, double t_s, std::vector<uint8_t>* bytes,
                       ByteLinkStats* st) {
  if (node >= path_gain_.size())
    return Status::InvalidArgument("node index " + std::to_string(node) + " has no link (nodes: " +
                                   std::to_string(path_gain_.size()) + ")");
  ByteLinkStats s;
  s.bytes = bytes->size();
  double uses = 0.0;
  if (link_) {
    ComplexGaussian g(DeriveSeed(seed_, "byte-link", node, DeriveSeed(a, "transfer", b)));
    const double snr = cfg_.snr_linear() * path_gain_[node];
    const size_t pb = cfg_.packet_bytes, n = bytes->size();
    std::vector<uint8_t> payload(pb), decoded(pb);
    for (size_t lo = 0; lo < n; lo += pb) {
      const size_t count = std::min(pb, n - lo);
      std::memset(payload.data(), 0, pb);
      std::memcpy(payload.data(), bytes->data() + lo, count);
      bool ok = false;
      for (uint32_t attempt = 0; attempt <= cfg_.max_retransmissions && !ok; ++attempt) {
        std::memset(decoded.data(), 0, pb);  // a fade too deep to decode delivers zeros
        ok = link_->SendOnce(payload.data(), decoded.data(), snr, DrawFading(cfg_.fading, cfg_.rician_k_db, g), g);
        ++s.packets;
        if (attempt > 0) ++s.retransmissions;
      }
      if (!ok) ++s.failed_packets;
      for (size_t i = 0; i < count; ++i)
        s.bit_errors += static_cast<uint64_t>(__builtin_popcount(static_cast<unsigned>(payload[i] ^ decoded[i])));
      std::memcpy(bytes->data() + lo, decoded.data(), count);
    }
    uses = static_cast<double>(s.packets) * link_->symbols_per_packet();
  }
  if (!trace_.empty()) {
    s.airtime_s = static_cast<double>(bytes->size()) * 8.0 / (trace_.KbpsAt(t_s) * 1000.0);
  } else {
    s.airtime_s = uses / cfg_.symbol_rate_hz;
  }
  st->Add(s);
  return Status::Ok();
}

}  // namespace edgebed
