// The packet link against closed forms where only the link's own behaviour can make them hold:
// - its mean received SNR under Rayleigh fading, seen through the bit errors it makes (the average
//   BER of Gray QPSK over Rayleigh fading, Proakis 14.3-7: 1/2 (1 - sqrt(g / (1 + g))), g = Eb/N0);
// - the Rician K-factor in the distribution of |h|^2, not only its mean (second moment of a
//   non-central chi-square with 2 degrees of freedom: E|h|^4 = (K^2 + 4K + 2) / (1 + K)^2);
// - Hamming(7,4) against no FEC: packet loss of each at the same SNR against the block error rates
//   of independent bit errors (a 7-bit codeword fails with 2 or more errors).
// Tolerances are 4 standard errors of each estimate, computed from the samples themselves.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "channel/digital_uplink.h"
#include "channel/fading.h"

using namespace edgebed;

namespace {

double Q(double x) { return 0.5 * std::erfc(x / std::sqrt(2.0)); }

struct MeanAndError {
  double mean = 0.0, std_error = 0.0;
};

MeanAndError Summarise(const std::vector<double>& x) {
  double s = 0.0, s2 = 0.0;
  for (double v : x) {
    s += v;
    s2 += v * v;
  }
  const double n = static_cast<double>(x.size()), mean = s / n;
  return {mean, std::sqrt(std::max(0.0, s2 / n - mean * mean) / n)};
}

}  // namespace

TEST_CASE("the packet link's mean received SNR under Rayleigh fading, seen through its bit errors") {
  ChannelConfig cfg;
  cfg.modulation = "qpsk";
  auto link = PacketLink::Create(cfg);
  REQUIRE(link.ok());
  for (double snr_db : {5.0, 10.0, 20.0}) {
    CAPTURE(snr_db);
    const double snr = std::pow(10.0, snr_db / 10.0);
    ComplexGaussian fading(DeriveSeed(7, "rayleigh-link", static_cast<uint64_t>(snr_db))), noise(DeriveSeed(7, "noise"));
    FastRng data(DeriveSeed(7, "data"));
    const size_t blocks = 60000, per_block = 32;
    std::vector<uint8_t> in(per_block), out(per_block);
    std::vector<double> block_ber;
    block_ber.reserve(blocks);
    for (size_t b = 0; b < blocks; ++b) {
      for (auto& s : in) s = static_cast<uint8_t>(data.Next() & 3u);
      // One fading coefficient per block, as a packet sees; the link equalises by it.
      link.value()->TransmitSymbols(in.data(), out.data(), per_block, snr, DrawFading("rayleigh", 0.0, fading), noise);
      int errors = 0;
      for (size_t i = 0; i < per_block; ++i) errors += __builtin_popcount(in[i] ^ out[i]);
      block_ber.push_back(errors / (2.0 * per_block));
    }
    const MeanAndError ber = Summarise(block_ber);
    const double g = snr / 2.0;  // QPSK: Eb/N0 = Es/N0 / 2
    const double theory = 0.5 * (1.0 - std::sqrt(g / (1.0 + g)));
    INFO("measured BER " << ber.mean << " +- " << ber.std_error << ", Rayleigh closed form " << theory);
    CHECK(std::fabs(ber.mean - theory) < 4.0 * ber.std_error);
    // What the same BER would be without fading at this SNR: far lower, so the check above sees the fading.
    CHECK(Q(std::sqrt(snr)) < 0.5 * theory);
  }
}

TEST_CASE("Rician fading: |h|^2 has the K-factor's second moment, not only mean 1") {
  for (double k_db : {0.0, 6.0, 10.0}) {
    CAPTURE(k_db);
    const double k = std::pow(10.0, k_db / 10.0);
    ComplexGaussian g(DeriveSeed(8, "rician-k", static_cast<uint64_t>(k_db)));
    std::vector<double> p, p2;
    for (int i = 0; i < 200000; ++i) {
      const double power = std::norm(DrawFading("rician", k_db, g));
      p.push_back(power);
      p2.push_back(power * power);
    }
    const MeanAndError m1 = Summarise(p), m2 = Summarise(p2);
    const double want2 = (k * k + 4.0 * k + 2.0) / ((1.0 + k) * (1.0 + k));
    INFO("E|h|^2 " << m1.mean << " +- " << m1.std_error << ", E|h|^4 " << m2.mean << " +- " << m2.std_error
                   << " (closed form " << want2 << "; Rayleigh would be 2)");
    CHECK(std::fabs(m1.mean - 1.0) < 4.0 * m1.std_error);
    CHECK(std::fabs(m2.mean - want2) < 4.0 * m2.std_error);
    CHECK(std::fabs(m2.mean - 2.0) > 10.0 * m2.std_error);  // distinguishable from Rayleigh at every K here
  }
}

TEST_CASE("Hamming(7,4) lowers packet loss against no FEC at the same SNR, as the block error rates say") {
  const uint32_t payload = 64;  // + the CRC-32: 68 bytes = 544 bits = 136 nibbles
  auto make = [&](const char* fec) {
    ChannelConfig cfg;
    cfg.modulation = "qpsk";
    cfg.fec = fec;
    cfg.packet_bytes = payload;
    auto l = PacketLink::Create(cfg);
    REQUIRE(l.ok());
    return std::move(l).value();
  };
  auto none = make("none"), hamming = make("hamming74");
  const double bits = 8.0 * (payload + 4), nibbles = 2.0 * (payload + 4);
  CHECK(none->coded_bits_per_packet() == bits);
  CHECK(hamming->coded_bits_per_packet() >= nibbles * 7);  // 7 coded bits per nibble (plus padding)
  // Two SNRs: one where no FEC loses about half its packets, one where Hamming does.
  for (double snr_db : {7.0, 10.0}) {
    CAPTURE(snr_db);
    const double snr = std::pow(10.0, snr_db / 10.0), p = Q(std::sqrt(snr));  // Gray QPSK bit error probability
    const double loss_none = 1.0 - std::pow(1.0 - p, bits);
    const double codeword_fail = 1.0 - std::pow(1.0 - p, 7) - 7.0 * p * std::pow(1.0 - p, 6);
    const double loss_hamming = 1.0 - std::pow(1.0 - codeword_fail, nibbles);
    ComplexGaussian noise(DeriveSeed(9, "fec", static_cast<uint64_t>(snr_db)));
    FastRng data(DeriveSeed(9, "fec-data"));
    std::vector<uint8_t> msg(payload), got(payload);
    const int packets = 3000;
    int lost_none = 0, lost_hamming = 0;
    for (int i = 0; i < packets; ++i) {
      for (auto& b : msg) b = static_cast<uint8_t>(data.Next());
      lost_none += !none->SendOnce(msg.data(), got.data(), snr, {1.0f, 0.0f}, noise);
      lost_hamming += !hamming->SendOnce(msg.data(), got.data(), snr, {1.0f, 0.0f}, noise);
    }
    const double mn = lost_none / static_cast<double>(packets), mh = lost_hamming / static_cast<double>(packets);
    auto se = [&](double q) { return std::sqrt(std::max(q * (1.0 - q), 1.0 / packets) / packets); };
    INFO("packet loss: none " << mn << " (closed form " << loss_none << "), hamming74 " << mh << " (closed form "
                              << loss_hamming << ")");
    CHECK(std::fabs(mn - loss_none) < 4.0 * se(loss_none));
    CHECK(std::fabs(mh - loss_hamming) < 4.0 * se(loss_hamming));
    CHECK(mh < mn);
  }
}
