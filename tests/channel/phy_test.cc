// The PHY against theory: closed-form BER on AWGN, mean received SNR under fading, the analog OTA
// error power, and seeding. Reference values are formulas, never the code under test.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "channel/analog_ota.h"
#include "channel/byte_link.h"
#include "channel/digital_ota.h"
#include "channel/digital_uplink.h"
#include "channel/fading.h"

using namespace edgebed;

namespace {

double Q(double x) { return 0.5 * std::erfc(x / std::sqrt(2.0)); }

// Gray-coded bit error probability on AWGN at Es/N0 = snr (linear).
double TheoryBer(const std::string& mod, double snr) {
  if (mod == "bpsk") return Q(std::sqrt(2.0 * snr));
  if (mod == "qpsk") return Q(std::sqrt(snr));
  const double x = std::sqrt(snr / 5.0);  // 16-QAM (Cho & Yoon 2002)
  return 0.25 * (3.0 * Q(x) + 2.0 * Q(3.0 * x) - Q(5.0 * x));
}

double MeasuredBer(const std::string& mod, double snr_db, double expected) {
  ChannelConfig cfg;
  cfg.modulation = mod;
  auto link = PacketLink::Create(cfg);
  REQUIRE(link.ok());
  const unsigned bps = link.value()->bits_per_symbol();
  const size_t bits = static_cast<size_t>(std::min(3e7, std::max(2e5, 3000.0 / expected)));
  const size_t n = bits / bps;
  FastRng data(DeriveSeed(1, "ber-data"));
  ComplexGaussian noise(DeriveSeed(1, "ber-noise"));
  std::vector<uint8_t> in(4096), out(4096);
  uint64_t errors = 0, sent = 0;
  for (size_t done = 0; done < n; done += in.size()) {
    for (auto& s : in) s = static_cast<uint8_t>(data.Next() & ((1u << bps) - 1));
    link.value()->TransmitSymbols(in.data(), out.data(), in.size(), std::pow(10.0, snr_db / 10.0), {1.0f, 0.0f},
                                  noise);
    for (size_t i = 0; i < in.size(); ++i) errors += __builtin_popcount(in[i] ^ out[i]);
    sent += in.size() * bps;
  }
  return static_cast<double>(errors) / static_cast<double>(sent);
}

}  // namespace

TEST_CASE("BER of BPSK, QPSK and 16-QAM on AWGN is within 10% of the closed form (BER >= 1e-4)") {
  struct Point {
    const char* mod;
    double snr_db;
  };
  const Point points[] = {{"bpsk", 0.0}, {"bpsk", 4.0}, {"bpsk", 7.0}, {"bpsk", 8.0},   {"qpsk", 3.0},
                          {"qpsk", 7.0}, {"qpsk", 10.0}, {"qpsk", 11.0}, {"qam16", 8.0}, {"qam16", 12.0},
                          {"qam16", 15.0}, {"qam16", 17.5}};
  for (const auto& p : points) {
    const double theory = TheoryBer(p.mod, std::pow(10.0, p.snr_db / 10.0));
    REQUIRE(theory >= 1e-4);
    const double measured = MeasuredBer(p.mod, p.snr_db, theory);
    INFO(p.mod << " at " << p.snr_db << " dB: measured " << measured << ", theory " << theory);
    CHECK(std::abs(measured - theory) / theory < 0.10);
  }
}

TEST_CASE("Rayleigh and Rician block fading keep the mean received SNR at the set value (within 0.2 dB)") {
  for (const char* kind : {"rayleigh", "rician"}) {
    ComplexGaussian g(DeriveSeed(2, "fading-test"));
    const int n = 200000;
    double sum = 0.0, below = 0.0;
    for (int i = 0; i < n; ++i) {
      const double gain = std::norm(DrawFading(kind, 6.0, g));
      sum += gain;
      below += gain < 0.1;
    }
    const double mean_snr_offset_db = 10.0 * std::log10(sum / n);
    INFO(kind << ": mean |h|^2 offset " << mean_snr_offset_db << " dB");
    CHECK(std::abs(mean_snr_offset_db) < 0.2);
    if (std::string(kind) == "rayleigh")  // |h|^2 ~ Exp(1): P(|h|^2 < 0.1) = 1 - e^-0.1
      CHECK(below / n == doctest::Approx(1.0 - std::exp(-0.1)).epsilon(0.03));
  }
  ComplexGaussian g(1);
  CHECK(DrawFading("none", 0.0, g) == cfloat(1.0f, 0.0f));
  CHECK(PathGain(20.0, 10.0, 3.0) == doctest::Approx(0.125));
  CHECK(PathGain(5.0, 10.0, 3.0) == doctest::Approx(1.0));
}

TEST_CASE("the received SNR measured on symbols under Rayleigh fading matches the set SNR") {
  ComplexGaussian g(DeriveSeed(3, "rx-snr"));
  const double snr_db = 10.0, snr = std::pow(10.0, snr_db / 10.0);
  double signal = 0.0, noise = 0.0;
  for (int block = 0; block < 20000; ++block) {
    const cfloat h = DrawFading("rayleigh", 0.0, g);
    for (int i = 0; i < 16; ++i) {
      const cfloat x(std::sqrt(0.5f), std::sqrt(0.5f));  // unit-energy symbol
      signal += std::norm(h * x);
      noise += std::norm(static_cast<float>(std::sqrt(1.0 / snr)) * g.Next());
    }
  }
  CHECK(std::abs(10.0 * std::log10(signal / noise) - snr_db) < 0.2);
}

TEST_CASE("analog OTA: the aggregate's error power matches sigma^2 N0 / (rho0 K_a^2) within its estimator's spread") {
  const size_t d = 200000;
  for (const char* fading : {"none", "rayleigh"}) {
    ChannelConfig cfg;
    cfg.uplink = "analog_ota";
    cfg.fading = fading;
    cfg.snr_db = 5.0;
    cfg.gain_threshold = 0.1;
    const uint32_t K = 10;
    AnalogOtaUplink ota(cfg, K, 11);
    std::vector<std::vector<float>> updates(K, std::vector<float>(d));
    FastRng r(5);
    for (auto& u : updates)
      for (auto& v : u) v = static_cast<float>(r.Uniform() - 0.5) * 0.02f;
    for (uint32_t round = 1; round <= 3; ++round) {
      std::vector<OtaInput> in;
      for (uint32_t k = 0; k < K; ++k) in.push_back({k, &updates[k]});
      LinkAccounting acc;
      auto out = ota.Superpose(round, in, &acc);
      REQUIRE(out.ok());
      const OtaOutput& o = out.value();
      std::vector<double> truth(d, 0.0);
      uint32_t active = 0;
      double mu = 0.0, second = 0.0;  // the active updates' common mean and second moment
      for (uint32_t k = 0; k < K; ++k) {
        if (!acc.per_node[k].active) continue;
        ++active;
        for (size_t i = 0; i < d; ++i) {
          truth[i] += updates[k][i];
          mu += updates[k][i];
          second += static_cast<double>(updates[k][i]) * updates[k][i];
        }
      }
      REQUIRE(active == o.active);
      mu /= static_cast<double>(active) * d;
      second /= static_cast<double>(active) * d;
      const double sigma2 = second - mu * mu;  // the normalisation the nodes agree on, from their updates
      double mse = 0.0;
      for (size_t i = 0; i < d; ++i) mse += std::pow(o.mean[i] - truth[i] / active, 2);
      mse /= static_cast<double>(d);
      // Per real value: sigma^2 N0 / (rho0 K_a^2), N0 = P_max / SNR. Without fading every node is
      // received at rho0 = P_max (all within the reference distance): the closed form needs nothing of
      // the channel's; with Rayleigh fading rho0 is the round's draw, P_max x the weakest active |h|^2.
      const double n0 = cfg.tx_power_w / std::pow(10.0, cfg.snr_db / 10.0);
      const double rho0 = std::string(fading) == "none" ? cfg.tx_power_w : o.rho0;
      const double expected = sigma2 * n0 / (rho0 * active * active);
      // The mean of d squared Gaussian errors: relative standard deviation sqrt(2 / d) = 0.32%.
      const double tolerance = 4.0 * std::sqrt(2.0 / static_cast<double>(d));
      INFO(fading << " round " << round << ": K_a " << active << ", mse " << mse << ", closed form " << expected);
      CHECK(std::abs(mse - expected) / expected < tolerance);
      if (std::string(fading) == "none") {
        CHECK(o.active == K);
        CHECK(o.rho0 == doctest::Approx(cfg.tx_power_w));
        CHECK(o.scale * o.scale == doctest::Approx(sigma2).epsilon(1e-6));
      } else {
        CHECK(o.rho0 >= cfg.tx_power_w * cfg.gain_threshold * (1 - 1e-6));  // no active node below the threshold
      }
      for (uint32_t k = 0; k < K; ++k) CHECK(acc.per_node[k].tx_energy_j <= cfg.tx_power_w * acc.airtime_s * 1.05);
      CHECK(acc.channel_uses == doctest::Approx(d / 2));
      CHECK(acc.control_bits > 0);
    }
  }
}

TEST_CASE("analog OTA truncation silences a fraction e^-g_th of Rayleigh nodes") {
  ChannelConfig cfg;
  cfg.uplink = "analog_ota";
  cfg.gain_threshold = 0.5;
  const uint32_t K = 40;
  AnalogOtaUplink ota(cfg, K, 3);
  std::vector<std::vector<float>> updates(K, std::vector<float>(64, 0.01f));
  double active = 0, total = 0;
  for (uint32_t round = 1; round <= 200; ++round) {
    std::vector<OtaInput> in;
    for (uint32_t k = 0; k < K; ++k) in.push_back({k, &updates[k]});
    LinkAccounting acc;
    auto out = ota.Superpose(round, in, &acc);
    REQUIRE(out.ok());
    active += out->active;
    total += K;
  }
  CHECK(active / total == doctest::Approx(std::exp(-0.5)).epsilon(0.05));
}

TEST_CASE("the digital uplink: exact at high SNR, erased at very low SNR, retransmissions help") {
  std::vector<float> update(5000);
  for (size_t i = 0; i < update.size(); ++i) update[i] = std::sin(0.01f * static_cast<float>(i));
  auto run = [&](double snr_db, const std::string& fading, uint32_t retx, LinkAccounting* acc) {
    ChannelConfig cfg;
    cfg.uplink = "digital";
    cfg.snr_db = snr_db;
    cfg.fading = fading;
    cfg.max_retransmissions = retx;
    cfg.packet_bytes = 256;
    auto up = MakeUplink(cfg, 4, 9);
    REQUIRE(up.ok());
    std::vector<float> v = update;
    REQUIRE(up.value()->Carry(2, 1, &v, 0, acc).ok());
    return v;
  };
  LinkAccounting clean, dead, once, retried;
  CHECK(run(30.0, "none", 0, &clean) == update);
  CHECK(clean.lost_packets == 0);
  CHECK(clean.per_node[2].packets == 79);  // 5000 floats / 64 per packet
  auto lost = run(-10.0, "none", 0, &dead);
  CHECK(dead.lost_packets == 79);
  CHECK(std::all_of(lost.begin(), lost.end(), [](float x) { return std::isnan(x); }));
  auto a = run(8.0, "rayleigh", 0, &once);
  auto b = run(8.0, "rayleigh", 3, &retried);
  CHECK(once.lost_packets > 0);
  CHECK(retried.lost_packets < once.lost_packets);
  CHECK(retried.retransmissions > 0);
  CHECK(retried.airtime_s > once.airtime_s);
  for (size_t i = 0; i < a.size(); ++i)
    if (!std::isnan(a[i])) CHECK(a[i] == update[i]);  // what passes the CRC is what was sent
  CHECK(once.per_node[2].tx_energy_j == doctest::Approx(0.1 * once.per_node[2].airtime_s));
}

TEST_CASE("a carrier offset the receiver does not track costs packets") {
  ChannelConfig cfg;
  cfg.uplink = "digital";
  cfg.fading = "none";
  cfg.snr_db = 20.0;
  cfg.packet_bytes = 256;
  std::vector<float> v(2000, 0.5f);
  LinkAccounting no_cfo, cfo;
  auto u1 = MakeUplink(cfg, 1, 1);
  REQUIRE(u1.value()->Carry(0, 1, &v, 0, &no_cfo).ok());
  cfg.carrier_offset = 0.01;
  std::vector<float> w(2000, 0.5f);
  auto u2 = MakeUplink(cfg, 1, 1);
  REQUIRE(u2.value()->Carry(0, 1, &w, 0, &cfo).ok());
  CHECK(no_cfo.lost_packets == 0);
  CHECK(cfo.lost_packets > 0);
}

TEST_CASE("same seed, same channel realisations bit for bit; another seed, others") {
  ChannelConfig cfg;
  cfg.uplink = "digital";
  cfg.snr_db = 9.0;
  cfg.packet_bytes = 64;
  cfg.distance_max_m = 40.0;
  std::vector<float> base(3000, 0.25f);
  auto carry = [&](uint64_t seed, uint32_t node, uint32_t round) {
    auto up = MakeUplink(cfg, 3, seed);
    std::vector<float> v = base;
    LinkAccounting acc;
    REQUIRE(up.value()->Carry(node, round, &v, 0, &acc).ok());
    std::vector<uint8_t> lost;
    for (float x : v) lost.push_back(std::isnan(x));
    return std::make_pair(lost, acc.per_node[node].snr_db);
  };
  CHECK(carry(1, 1, 2) == carry(1, 1, 2));
  CHECK(carry(1, 1, 2).first != carry(2, 1, 2).first);
  CHECK(carry(1, 1, 2).first != carry(1, 1, 3).first);  // each round draws anew
  CHECK(carry(1, 1, 2).second != carry(2, 1, 2).second);  // distances come from the seed too

  cfg.uplink = "analog_ota";
  cfg.distance_max_m = 10.0;
  cfg.gain_threshold = 0.0;
  std::vector<std::vector<float>> ups(3, std::vector<float>(1000));
  for (size_t k = 0; k < 3; ++k)
    for (size_t i = 0; i < 1000; ++i) ups[k][i] = std::cos(0.1f * static_cast<float>(i * (k + 1)));
  auto ota = [&](uint64_t seed) {
    AnalogOtaUplink o(cfg, 3, seed);
    std::vector<OtaInput> in = {{0, &ups[0]}, {1, &ups[1]}, {2, &ups[2]}};
    LinkAccounting acc;
    return o.Superpose(1, in, &acc).value().mean;
  };
  CHECK(ota(4) == ota(4));
  CHECK(ota(4) != ota(5));
}

TEST_CASE("bad channel configuration fails naming the field") {
  auto bad = [](auto change, const std::string& field) {
    ChannelConfig c;
    change(c);
    Status st = c.Validate();
    INFO(st.message());
    return !st.ok() && st.message().find(field) != std::string::npos;
  };
  CHECK(bad([](ChannelConfig& c) { c.gain_threshold = -0.1; }, "channel.gain_threshold = -0.1 is out of range [0, 100]"));
  CHECK(bad([](ChannelConfig& c) { c.modulation = "qam1024"; }, "channel.modulation = 'qam1024' is not allowed"));
  CHECK(bad([](ChannelConfig& c) { c.fec = "turbo"; }, "channel.fec = 'turbo'"));
  CHECK(bad([](ChannelConfig& c) { c.snr_db = -40; }, "channel.snr_db = -40 is out of range [-30, 60]"));
  CHECK(bad([](ChannelConfig& c) { c.packet_bytes = 30; }, "channel.packet_bytes = 30 must be a multiple of 4"));
  CHECK(bad([](ChannelConfig& c) { c.distance_min_m = 50; c.distance_max_m = 20; }, "channel.distance_max_m"));
  CHECK(bad([](ChannelConfig& c) { c.fading = "nakagami"; }, "channel.fading"));
  CHECK(bad([](ChannelConfig& c) { c.tx_power_w = 0; }, "channel.tx_power_w"));
  ChannelConfig ok;
  CHECK(ok.Validate().ok());
}

namespace {
// Random unit-norm rows, the shape of a URA code (the test's own, not codecs').
std::vector<float> UnitRows(uint32_t n, uint32_t d, uint64_t seed) {
  ComplexGaussian g(seed);
  std::vector<float> c(static_cast<size_t>(n) * d);
  for (uint32_t i = 0; i < n; ++i) {
    double norm = 0;
    for (uint32_t j = 0; j < d; ++j) {
      c[i * d + j] = g.Next().real();
      norm += c[i * d + j] * c[i * d + j];
    }
    for (uint32_t j = 0; j < d; ++j) c[i * d + j] /= static_cast<float>(std::sqrt(norm));
  }
  return c;
}
}  // namespace

TEST_CASE("digital OTA: y = x^T C + w, with the noise power the SNR definition says (within 5%)") {
  const uint32_t n = 32, d = 64, K = 8;
  const size_t S = 4000;
  const std::vector<float> C = UnitRows(n, d, 3);
  std::vector<std::vector<uint32_t>> idx(K, std::vector<uint32_t>(S));
  FastRng r(9);
  for (auto& v : idx)
    for (auto& i : v) i = static_cast<uint32_t>(r.Next() % n);
  for (const char* ref : {"node", "sum"}) {
    ChannelConfig cfg;
    cfg.uplink = "digital_ota";
    cfg.fading = "none";
    cfg.snr_db = 10.0;
    cfg.snr_reference = ref;
    DigitalOtaUplink ota(cfg, K, 5);
    std::vector<UraInput> in;
    for (uint32_t k = 0; k < K; ++k) in.push_back({k, &idx[k]});
    LinkAccounting acc;
    auto out = ota.SuperposeCodewords(1, in, {&C, n, d, 5}, &acc);
    REQUIRE(out.ok());
    REQUIRE(out->active_nodes.size() == K);
    double noise = 0, signal = 0;
    for (size_t s = 0; s < S; ++s)
      for (uint32_t j = 0; j < d; ++j) {
        double clean = 0;
        for (uint32_t k = 0; k < K; ++k) clean += C[idx[k][s] * d + j];
        noise += std::pow(out->y[s * d + j] - clean, 2);
        signal += clean * clean;
      }
    noise /= static_cast<double>(S * d);
    signal /= static_cast<double>(S * d);
    // "node": each node's codeword has power 1/d per entry, so noise = 1 / (d SNR); "sum": noise =
    // the superposed signal's power / SNR.
    const double expected = std::string(ref) == "node" ? 1.0 / (d * 10.0) : signal / 10.0;
    INFO(ref << ": measured noise " << noise << ", expected " << expected);
    CHECK(std::abs(noise - expected) / expected < 0.05);
    CHECK(out->noise_var == doctest::Approx(expected).epsilon(0.05));
    CHECK(acc.channel_uses == doctest::Approx(S * d / 2.0));
    CHECK(acc.payload_bits == K * S * 5);
    for (uint32_t k = 0; k < K; ++k) CHECK(acc.per_node[k].tx_energy_j <= cfg.tx_power_w * acc.airtime_s * 1.0001);
  }
}

TEST_CASE("digital OTA: Rayleigh truncation silences a fraction e^-g_th and only the others are summed") {
  const uint32_t n = 16, d = 8, K = 40;
  const std::vector<float> C = UnitRows(n, d, 4);
  std::vector<std::vector<uint32_t>> idx(K, std::vector<uint32_t>(3));
  for (uint32_t k = 0; k < K; ++k) idx[k] = {k % n, (k + 1) % n, (k + 2) % n};
  ChannelConfig cfg;
  cfg.uplink = "digital_ota";
  cfg.gain_threshold = 0.5;
  cfg.snr_db = 60.0;
  DigitalOtaUplink ota(cfg, K, 3);
  double active = 0, total = 0;
  for (uint32_t round = 1; round <= 200; ++round) {
    std::vector<UraInput> in;
    for (uint32_t k = 0; k < K; ++k) in.push_back({k, &idx[k]});
    LinkAccounting acc;
    auto out = ota.SuperposeCodewords(round, in, {&C, n, d, 4}, &acc);
    REQUIRE(out.ok());
    active += out->active_nodes.size();
    total += K;
    if (round == 1) {  // at 60 dB the received block is the sum of the active nodes' codewords
      for (uint32_t j = 0; j < d; ++j) {
        double clean = 0;
        for (uint32_t k : out->active_nodes) clean += C[idx[k][0] * d + j];
        CHECK(out->y[j] == doctest::Approx(clean).epsilon(1e-2));
      }
      for (uint32_t k = 0; k < K; ++k) CHECK(acc.per_node[k].active == (ota.ExpectedGain(k, round) >= 0.5));
    }
  }
  CHECK(active / total == doctest::Approx(std::exp(-0.5)).epsilon(0.05));
  std::vector<uint32_t> bad = {0, 99, 1};
  LinkAccounting acc;
  CHECK(!ota.SuperposeCodewords(1, {{0, &bad}}, {&C, n, d, 4}, &acc).ok());
}

TEST_CASE("the byte link carries a bottleneck: untouched when ideal, closed-form BER on AWGN, trace airtime") {
  ChannelConfig cfg;
  std::vector<uint8_t> sent(200000);
  for (size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<uint8_t>(i * 131 + 7);
  auto ideal = ByteLink::Create(cfg, 2, 1);
  REQUIRE(ideal.ok());
  auto bytes = sent;
  ByteLinkStats st;
  REQUIRE(ideal.value()->Carry(0, 1, 1, 0.0, &bytes, &st).ok());
  CHECK(bytes == sent);
  CHECK(st.bit_errors == 0);
  CHECK(st.airtime_s == 0.0);

  // QPSK without FEC on AWGN at Es/N0 = 6 dB: every bit flips with probability Q(sqrt(Es/N0)), and
  // failed packets are delivered with their errors, not erased.
  cfg.uplink = "digital";
  cfg.fading = "none";
  cfg.fec = "none";
  cfg.snr_db = 6.0;
  auto noisy = ByteLink::Create(cfg, 2, 1);
  REQUIRE(noisy.ok());
  bytes = sent;
  st = ByteLinkStats();
  REQUIRE(noisy.value()->Carry(1, 1, 2, 0.0, &bytes, &st).ok());
  uint64_t flipped = 0;
  for (size_t i = 0; i < sent.size(); ++i) flipped += static_cast<uint64_t>(__builtin_popcount(sent[i] ^ bytes[i]));
  CHECK(flipped == st.bit_errors);
  const double ber = static_cast<double>(flipped) / (8.0 * static_cast<double>(sent.size()));
  CHECK(ber == doctest::Approx(TheoryBer("qpsk", std::pow(10.0, 0.6))).epsilon(0.1));
  CHECK(st.failed_packets == st.packets);  // 1024-byte packets at this BER never pass the CRC
  CHECK(st.airtime_s > 0.0);

  // Same transfer id, same errors; another transfer, others.
  auto again = sent;
  ByteLinkStats st2;
  REQUIRE(noisy.value()->Carry(1, 1, 2, 0.0, &again, &st2).ok());
  CHECK(again == bytes);
  again = sent;
  REQUIRE(noisy.value()->Carry(1, 1, 3, 0.0, &again, &st2).ok());
  CHECK(again != bytes);

  // With a bandwidth trace the airtime is the payload's bits over the rate in force.
  auto trace = BandwidthTrace::Create({{0.0, 1000.0}, {8.0, 64.0}});
  REQUIRE(trace.ok());
  CHECK(trace->KbpsAt(7.99) == 1000.0);
  CHECK(trace->KbpsAt(8.0) == 64.0);
  auto traced = ByteLink::Create(ChannelConfig{}, 1, 1, trace.value());
  REQUIRE(traced.ok());
  std::vector<uint8_t> b392(392);
  ByteLinkStats s3;
  REQUIRE(traced.value()->Carry(0, 0, 0, 9.0, &b392, &s3).ok());
  CHECK(s3.airtime_s == doctest::Approx(392 * 8 / 64000.0));
  CHECK(BandwidthTrace::Create({{1.0, 5.0}}).status().message().find("split.bandwidth[0].t_s must be 0") != std::string::npos);
  CHECK(BandwidthTrace::Create({{0.0, 5.0}, {0.0, 6.0}}).status().message().find("split.bandwidth[1]") != std::string::npos);
  ChannelConfig ota;
  ota.uplink = "analog_ota";
  CHECK(ByteLink::Create(ota, 1, 1).status().message().find("channel.uplink") != std::string::npos);
}
