// Orthogonal digital uplink: each node's float32 update is cut into packets, each packet gets CRC-32
// and FEC (liquid packetizer), is modulated (liquid modem), faded (one coefficient per packet), offset
// in frequency, hit by AWGN, equalised with the known coefficient, demodulated by hard decision and
// decoded. A packet whose CRC fails is retransmitted up to max_retransmissions times (airtime and
// energy counted); one still lost erases its values (NaN), which the aggregator leaves out.
#pragma once
#include <memory>

#include "channel/gaussian.h"
#include "channel/modem.h"
#include "channel/uplink.h"

namespace edgebed {

// One packet's trip over the air; reusable across packets of the same size and code.
class PacketLink {
 public:
  static Result<std::unique_ptr<PacketLink>> Create(const ChannelConfig& cfg);
  // Sends `payload` (packet_bytes) once; `snr` is the mean receive SNR [linear] of the link, `h` the
  // packet's fading coefficient. Writes what the receiver decoded; true when the CRC passed.
  bool SendOnce(const uint8_t* payload, uint8_t* decoded, double snr, cfloat h, ComplexGaussian& noise);
  // The symbol-level part of SendOnce: symbols (bps bits each) -> modulate -> fading h, carrier
  // offset, AWGN at mean SNR `snr` -> equalise by h -> hard decisions. Exposed for BER tests.
  void TransmitSymbols(const uint8_t* in, uint8_t* out, size_t n, double snr, cfloat h, ComplexGaussian& noise);
  unsigned bits_per_symbol() const { return modem_->bps(); }
  uint32_t symbols_per_packet() const { return symbols_; }
  uint32_t coded_bits_per_packet() const { return packetizer_->encoded_bytes() * 8; }

 private:
  PacketLink() = default;
  ChannelConfig cfg_;
  std::unique_ptr<Modem> modem_;
  std::unique_ptr<Packetizer> packetizer_;
  uint32_t symbols_ = 0;
  std::vector<uint8_t> coded_, sym_in_, sym_out_, rx_coded_;
};

class DigitalUplink final : public Uplink {
 public:
  static Result<std::unique_ptr<DigitalUplink>> Create(const ChannelConfig& cfg, uint32_t num_nodes, uint64_t seed);
  std::string Describe() const override;

 private:
  Status DoCarry(uint32_t node, uint32_t round, std::vector<float>* values, uint64_t payload_bytes,
                 LinkAccounting* acc) override;
  double DoExpectedGain(uint32_t node, uint32_t) const override {
    return node < path_gain_.size() ? path_gain_[node] : 0.0;
  }
  ChannelConfig cfg_;
  uint64_t seed_ = 0;
  std::vector<double> path_gain_;
  std::unique_ptr<PacketLink> link_;
};

}  // namespace edgebed
