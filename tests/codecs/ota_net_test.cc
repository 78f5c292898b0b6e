// How good the learned count decoders are: a small AMP-DA-Net trained here against its untrained self
// and AMP-DA; the shipped decoders (codecs/decoders/amp_da_net.pt, amp_da_net_private16.pt,
// amp_da_net_lowcoh.pt, amp_da_net_freecode.pt, amp_da_net_sumpower.pt and amp_da_net_follow.pt,
// the default) on count vectors of a real federation held out from their training
// (tests/data/ota/heldout_counts.bin) and on Zipf choices; the MAP search and the posterior mean.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <tuple>

#include "codecs/count_data.h"
#include "codecs/count_decoder.h"

using namespace edgebed;

namespace {

// NMSE sum |x_hat - x|^2 / sum |x|^2 of the raw counts over `groups_per_ka` groups of 250 blocks for
// every K_a in [ka_min, ka_max] (each K_a equally often, so no draw of K_a moves the figure). The
// noise is scaled per block to the SNR of the block's superposed codewords (the AMP-DA-Net paper's
// definition); both decoders see the same counts and the same unit noise draws.
struct Nmse {
  double raw = 0.0, counts = 0.0;  // the decoder's soft estimate; the post-processed integer counts
  double mean = 0.0;               // with map_refine: the posterior mean near the MAP counts
};
// With from_truth (and map_refine) the MAP search and the Gibbs chain start at the true counts.
Nmse CountNmse(CountDecoder& dec, const CountData& data, const std::vector<size_t>& rounds, double snr_db, uint32_t ka_min,
               uint32_t ka_max, uint32_t groups_per_ka, uint64_t seed, bool map_refine = false, bool from_truth = false) {
  Rng rng = MakeRng(seed, "ota-net-test");
  const uint32_t n = data.n, d = dec.d(), group = 250;
  const double snr = std::pow(10.0, snr_db / 10.0);
  double err = 0.0, err_counts = 0.0, err_mean = 0.0, ref = 0.0;
  for (uint32_t ka = ka_min; ka <= ka_max; ++ka)
    for (uint32_t gi = 0; gi < groups_per_ka; ++gi) {
      const size_t r = rounds[(ka + gi) % rounds.size()];
      const CountBatch b = SampleCounts(data, {r}, group, ka, ka, rng);
      std::vector<float> y = SuperposeCounts(dec.codebook(), n, d, b.counts, 0.0, rng);
      std::normal_distribution<float> g(0.0f, 1.0f);
      double noise_var = 0.0;
      for (uint32_t s = 0; s < group; ++s) {
        double power = 0.0;
        for (uint32_t j = 0; j < d; ++j) power += y[s * d + j] * y[s * d + j];
        power /= d;
        noise_var += power / snr / group;
        for (uint32_t j = 0; j < d; ++j) y[s * d + j] += static_cast<float>(std::sqrt(power / snr)) * g(rng);
      }
      CountProblem p;
      p.y = y.data();
      p.blocks = group;
      p.noise_var = noise_var;
      p.k_max = ka_max;
      p.popularity = data.rounds[r].popularity.data();
      p.map_refine = map_refine;
      const std::vector<int32_t> truth(b.counts.begin(), b.counts.end());
      if (from_truth) p.start_counts = truth.data();
      auto est = dec.Decode(p);
      REQUIRE(est.ok());
      for (size_t i = 0; i < b.counts.size(); ++i) {
        err += (est->raw[i] - b.counts[i]) * (est->raw[i] - b.counts[i]);
        err_counts += (est->counts[i] - b.counts[i]) * (est->counts[i] - b.counts[i]);
        if (map_refine) err_mean += (est->mean[i] - b.counts[i]) * (est->mean[i] - b.counts[i]);
        ref += static_cast<double>(b.counts[i]) * b.counts[i];
      }
    }
  return {err / ref, err_counts / ref, err_mean / ref};
}

std::vector<size_t> AllRounds(const CountData& data) {
  std::vector<size_t> r(data.rounds.size());
  for (size_t i = 0; i < r.size(); ++i) r[i] = i;
  return r;
}

}  // namespace

TEST_CASE("a small AMP-DA-Net trained here beats its untrained self and AMP-DA on held-out counts at 5 dB") {
  const uint32_t n = 64, d = 32;
  Rng rng = MakeRng(31, "test");
  const CountData train = SyntheticCountData(n, 13, 20, 500, 1.1, rng);
  Rng held_rng = MakeRng(32, "test");
  const CountData held = SyntheticCountData(n, 13, 4, 500, 1.1, held_rng);  // other draws, same popularity
  AmpDaNetTrainOptions t;
  t.net.n = n;
  t.net.d = d;
  t.net.layers = 5;
  t.net.filters = 16;
  t.batch = 64;
  t.learning_rate = 3e-3;
  t.snr_min_db = 0.0;
  t.snr_max_db = 10.0;
  t.steps = 300;
  t.max_minutes = 1e9;
  const auto t0 = std::chrono::steady_clock::now();
  auto trained = TrainAmpDaNet(train, t);
  REQUIRE(trained.ok());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  t.steps = 1;
  t.learning_rate = 1e-12;  // one step that moves nothing: the network as initialised
  auto untrained = TrainAmpDaNet(train, t);
  REQUIRE(untrained.ok());
  auto amp_made = MakeAmpDa(n, d, 7);
  REQUIRE(amp_made.ok());
  auto amp = std::move(amp_made).value();
  const auto rounds = AllRounds(held);
  const double e_tr = CountNmse(*trained.value(), held, rounds, 5.0, 7, 13, 2, 5).raw;
  const double e_un = CountNmse(*untrained.value(), held, rounds, 5.0, 7, 13, 2, 5).raw;
  const double e_amp = CountNmse(*amp, held, rounds, 5.0, 7, 13, 2, 5).raw;
  MESSAGE("trained in ", secs, " s; NMSE at 5 dB: trained ", e_tr, ", untrained ", e_un, ", AMP-DA ", e_amp);
  // Measured (2026-11-30): 0.155, 0.226, 0.285 over 3,500 blocks (500 per K_a), whose NMSE estimate
  // spreads by a few per cent; training must take at least 15% off both.
  CHECK(e_tr < 0.85 * e_un);
  CHECK(e_tr < 0.85 * e_amp);
}

TEST_CASE("the shipped AMP-DA-Nets on a real federation's held-out count vectors: NMSE under their bounds, below AMP-DA's; "
          "the designed and learned codes below the random code's at 10 dB") {
  auto data = LoadCountData(std::string(EDGEBED_SOURCE_DIR) + "/tests/data/ota/heldout_counts.bin");
  REQUIRE(data.ok());
  const auto rounds = AllRounds(data.value());
  // Bounds: the figures measured when each decoder was shipped (over 3,500 blocks, 500 per K_a) plus
  // about three standard deviations of the estimate (a few hundred erroneous blocks at 10 dB, a few
  // thousand at 5 dB). amp_da_net.pt (2026-11-30): 0.107 at 5 dB, 6.7e-3 at 10 dB;
  // amp_da_net_private16.pt (2026-12-01): 0.111 and 8.6e-3; amp_da_net_lowcoh.pt (2026-12-02): 0.099
  // and 5.1e-3; amp_da_net_freecode.pt (2026-12-02): 0.098 and 5.3e-3; amp_da_net_follow.pt
  // (2026-12-02, the default): 0.092 and 4.1e-3.
  struct Shipped {
    const char* file;
    double bound_5db, bound_10db;
  };
  // AMP-DA's figures depend only on its own code and the draws: one decode per SNR serves every file.
  const uint32_t d = 64;
  auto amp_made = MakeAmpDa(data->n, d, 7);
  REQUIRE(amp_made.ok());
  auto amp = std::move(amp_made).value();
  const Nmse amp_5db = CountNmse(*amp, data.value(), rounds, 5.0, 7, 13, 2, 11);
  const Nmse amp_10db = CountNmse(*amp, data.value(), rounds, 10.0, 7, 13, 2, 11);
  std::map<std::string, double> raw_10db;
  for (const Shipped& f : {Shipped{"amp_da_net.pt", 0.12, 8e-3}, Shipped{"amp_da_net_private16.pt", 0.125, 1.0e-2},
                           Shipped{"amp_da_net_lowcoh.pt", 0.112, 5.8e-3}, Shipped{"amp_da_net_freecode.pt", 0.11, 6.1e-3},
                           Shipped{"amp_da_net_follow.pt", 0.1, 4.8e-3}}) {
    auto net = LoadAmpDaNet(std::string(EDGEBED_SOURCE_DIR) + "/codecs/decoders/" + f.file);
    REQUIRE(net.ok());
    REQUIRE(net.value()->d() == d);
    for (const auto& [snr, bound, e_amp] : {std::tuple{5.0, f.bound_5db, amp_5db}, std::tuple{10.0, f.bound_10db, amp_10db}}) {
      const Nmse e_net = CountNmse(*net.value(), data.value(), rounds, snr, 7, 13, 2, 11);
      MESSAGE(std::string(f.file), " at ", snr, " dB: AMP-DA-Net raw ", e_net.raw, " counts ", e_net.counts, ", AMP-DA raw ", e_amp.raw,
              " counts ", e_amp.counts);
      CHECK(e_net.raw < bound);
      CHECK(e_net.raw < e_amp.raw);
      CHECK(e_net.counts < e_amp.counts);
      if (snr == 10.0) raw_10db[f.file] = e_net.raw;
    }
  }
  // The codes of the low-coherence and the default decoder beat the random code of amp_da_net.pt on
  // federation counts: measured 5.1e-3 and 5.3e-3 against 6.7e-3 (`edgebed ota nmse`, 3,500 blocks:
  // 4.8e-3 and 4.65e-3 against 6.6e-3). The estimates spread by about 5% (a few hundred erroneous
  // blocks); the gaps are 23% and 20%.
  CHECK(raw_10db.at("amp_da_net_lowcoh.pt") < 0.85 * raw_10db.at("amp_da_net.pt"));
  CHECK(raw_10db.at("amp_da_net_freecode.pt") < 0.85 * raw_10db.at("amp_da_net.pt"));
  // The default, trained with the noise's scale differentiated, beats freecode there too: measured
  // 4.1e-3 against 5.3e-3 here (`edgebed ota nmse`, other draws: 2.80e-3 against 4.65e-3); the
  // estimates spread by about 5%.
  CHECK(raw_10db.at("amp_da_net_follow.pt") < 0.9 * raw_10db.at("amp_da_net_freecode.pt"));
}

// Two decoder files' posterior-mean NMSE on the same independent Zipf(1.1) choices of 13 nodes
// (3,500 blocks, 500 per K_a in 7..13, the MAP search and the Gibbs chain) at one SNR of the sum.
std::pair<double, double> ZipfPosteriorMeans(const std::string& a, const std::string& b, double snr_db, uint64_t data_seed,
                                             uint64_t noise_seed) {
  auto da = LoadAmpDaNet(a.find('/') == std::string::npos ? std::string(EDGEBED_SOURCE_DIR) + "/codecs/decoders/" + a : a);
  auto db = LoadAmpDaNet(b.find('/') == std::string::npos ? std::string(EDGEBED_SOURCE_DIR) + "/codecs/decoders/" + b : b);
  REQUIRE(da.ok());
  REQUIRE(db.ok());
  Rng rng = MakeRng(data_seed, "test");
  const CountData zipf = SyntheticCountData(128, 13, 2, 500, 1.1, rng);
  const auto rounds = AllRounds(zipf);
  const double ea = CountNmse(*da.value(), zipf, rounds, snr_db, 7, 13, 2, noise_seed, /*map_refine=*/true).mean;
  const double eb = CountNmse(*db.value(), zipf, rounds, snr_db, 7, 13, 2, noise_seed, /*map_refine=*/true).mean;
  MESSAGE(snr_db, " dB, posterior mean NMSE: ", a, " ", ea, ", ", b, " ", eb);
  return {ea, eb};
}

TEST_CASE("on independent Zipf choices at 4 dB the private-dimension decoder's posterior mean beats the default's") {
  const auto [e_base, e_priv] = ZipfPosteriorMeans("amp_da_net.pt", "amp_da_net_private16.pt", 4.0, 43, 17);
  // `edgebed ota nmse --zipf 1.1 --map-refine` (3,500 blocks): 0.107 and 0.098; the goal is
  // NMSE 1e-1 at 4 dB or below.
  CHECK(e_priv < 0.105);
  CHECK(e_priv < 0.95 * e_base);
}

TEST_CASE("on independent Zipf choices at 9 dB the low-coherence decoder's posterior mean beats the default's") {
  const auto [z_base, z_low] = ZipfPosteriorMeans("amp_da_net.pt", "amp_da_net_lowcoh.pt", 9.0, 47, 19);
  // Measured here (2026-12-02): 7.7e-3 and 5.6e-3 (`edgebed ota nmse --zipf 1.1 --map-refine`, 3,500
  // blocks: 7.2e-3 and 5.4e-3). The estimates spread by about 5%; the gap is 27%.
  CHECK(z_low < 0.85 * z_base);
}

TEST_CASE("amp_da_net_sumpower.pt at 8 dB of the sum on independent Zipf choices: under 1e-2, below freecode's") {
  // Trained with the noise's scale differentiated (the authors' convention, `ota train
  // --noise-follows-code`): its code lowers the received sum's power, which at one SNR of the sum is
  // less noise. BENCHMARKS.md (issue 20) has why it is not the default.
  const auto [e_sum, e_def] = ZipfPosteriorMeans("amp_da_net_sumpower.pt", "amp_da_net_freecode.pt", 8.0, 53, 23);
  // Measured here: 5.3e-3 and 1.17e-2 (`edgebed ota nmse --zipf 1.1 --map-refine`, other draws of
  // 3,500 blocks: 4.4e-3 and 1.21e-2). The goal is 1e-2 at 8 dB or below; these estimates
  // spread by 10-15% (a hundred or so wrong blocks), so the bound is about two of that above.
  CHECK(e_sum < 7e-3);
  CHECK(e_sum < 0.6 * e_def);
}

TEST_CASE("the default decoder on independent Zipf choices: 1e-1 at 4 dB and 1e-2 at 8 dB of the sum (the issue's goal)") {
  // amp_da_net_follow.pt, `ota train --noise-follows-code` from freecode (BENCHMARKS.md, issue 20);
  // `edgebed ota nmse --zipf 1.1 --map-refine` (3,500 blocks): 0.054 at 4 dB, 3.9e-3 at 8 dB.
  const auto [e4, f4] = ZipfPosteriorMeans(DefaultDecoderPath(), "amp_da_net_freecode.pt", 4.0, 59, 29);
  const auto [e8, f8] = ZipfPosteriorMeans(DefaultDecoderPath(), "amp_da_net_freecode.pt", 8.0, 59, 29);
  // Measured here: 0.055 and 4.3e-3 (freecode: 0.092 and 1.27e-2). The estimates spread by 10-15% at
  // 8 dB and a few per cent at 4 dB.
  CHECK(e4 < 0.07);
  CHECK(e4 < 0.8 * f4);
  CHECK(e8 < 6e-3);
  CHECK(e8 < 0.6 * f8);
}

TEST_CASE("on independent Zipf choices at 8 dB the decoder's posterior mean is near its code's MMSE estimate") {
  // Started at the true counts (`ota nmse --from-truth`), the Gibbs chain's posterior mean is the
  // code's MMSE estimate, up to the chain's mixing: no decoder with that code does better. Started at
  // the decoder's counts it lands within a few per cent of it, so at 8 dB what is left is the code's.
  auto net = LoadAmpDaNet(std::string(EDGEBED_SOURCE_DIR) + "/codecs/decoders/amp_da_net_freecode.pt");
  REQUIRE(net.ok());
  Rng rng = MakeRng(53, "test");
  const CountData zipf = SyntheticCountData(128, 13, 2, 500, 1.1, rng);
  const auto rounds = AllRounds(zipf);
  const double decoded = CountNmse(*net.value(), zipf, rounds, 8.0, 7, 13, 2, 23, /*map_refine=*/true).mean;
  const double bound = CountNmse(*net.value(), zipf, rounds, 8.0, 7, 13, 2, 23, true, /*from_truth=*/true).mean;
  MESSAGE("8 dB, posterior mean NMSE from the decoder's counts ", decoded, ", from the true counts ", bound);
  CHECK(bound <= decoded);
  CHECK(decoded < 1.1 * bound);
}

TEST_CASE("the MAP swap search lowers the counts' error on independent Zipf choices at 10 dB (AMP-DA)") {
  Rng rng = MakeRng(41, "test");
  const CountData data = SyntheticCountData(128, 13, 2, 500, 1.1, rng);
  auto amp_made = MakeAmpDa(128, 64, 7);
  REQUIRE(amp_made.ok());
  auto amp = std::move(amp_made).value();
  const auto rounds = AllRounds(data);
  const Nmse plain = CountNmse(*amp, data, rounds, 10.0, 7, 13, 2, 13);
  const Nmse map = CountNmse(*amp, data, rounds, 10.0, 7, 13, 2, 13, /*map_refine=*/true);
  MESSAGE("AMP-DA at 10 dB, counts NMSE: rounding ", plain.counts, ", with the swap search ", map.counts,
          ", posterior mean ", map.mean);
  CHECK(map.raw == plain.raw);  // the decoder's own estimate is untouched
  // Measured with `edgebed ota nmse --zipf 1.1` (3,500 blocks): 1.18e-2 -> 5.9e-3.
  CHECK(map.counts < 0.8 * plain.counts);
  // The posterior mean weighs the MAP point's rivals instead of betting on one (measured 0.63x).
  CHECK(map.mean < 0.85 * map.counts);
}

TEST_CASE("with one active node the posterior mean is the closed form over the n codewords, from any start") {
  // K = 1: each Gibbs step draws the one count's codeword from the whole posterior, and the
  // Rao-Blackwellised average of those conditionals is exactly P(i | y) ~ pi_i exp(-||y - C_i||^2 /
  // (2 var)), var = max(noise_var, the start's residual power ||y - C_a||^2 / d) with a the start:
  // the decoder's largest raw entry, or CountProblem::start_counts when given (ota nmse --from-truth).
  // (The sampling itself is checked by the test above, on NMSE.)
  const uint32_t n = 16, d = 8, S = 64;
  auto amp_made = MakeAmpDa(n, d, 3);
  REQUIRE(amp_made.ok());
  auto amp = std::move(amp_made).value();
  const std::vector<float>& C = amp->codebook();
  std::vector<double> pop(n);
  double total = 0.0;
  for (uint32_t i = 0; i < n; ++i) total += pop[i] = std::pow(i + 1.0, -1.1);
  for (double& v : pop) v /= total;
  Rng rng = MakeRng(5, "k1-test");
  std::discrete_distribution<uint32_t> pick(pop.begin(), pop.end());
  std::normal_distribution<float> g(0.0f, 1.0f);
  const double noise_var = 0.08;
  std::vector<float> y(static_cast<size_t>(S) * d);
  std::vector<int32_t> start(static_cast<size_t>(S) * n, 0);
  for (uint32_t s = 0; s < S; ++s) {
    const uint32_t i = pick(rng);
    for (uint32_t j = 0; j < d; ++j) y[s * d + j] = C[i * d + j] + static_cast<float>(std::sqrt(noise_var)) * g(rng);
    start[s * n + (i + 1 + s % (n - 1)) % n] = 1;  // never the codeword sent
  }
  CountProblem p;
  p.y = y.data();
  p.blocks = S;
  p.noise_var = noise_var;
  p.k_max = 1;
  p.popularity = pop.data();
  p.map_refine = true;
  auto check = [&](const CountEstimate& est, bool from_start) {
    double worst = 0.0, uncertain = 0.0;
    for (uint32_t s = 0; s < S; ++s) {
      auto dist2 = [&](uint32_t i) {
        double e = 0.0;
        for (uint32_t j = 0; j < d; ++j) e += (y[s * d + j] - C[i * d + j]) * (y[s * d + j] - C[i * d + j]);
        return e;
      };
      const float* raw = &est.raw[static_cast<size_t>(s) * n];
      const int32_t* st = &start[static_cast<size_t>(s) * n];
      const uint32_t a = static_cast<uint32_t>(from_start ? std::max_element(st, st + n) - st : std::max_element(raw, raw + n) - raw);
      const double var = std::max(noise_var, dist2(a) / d);
      std::vector<double> w(n);
      double sum = 0.0;
      for (uint32_t i = 0; i < n; ++i) sum += w[i] = pop[i] * std::exp(-(dist2(i) - dist2(a)) / (2.0 * var));
      const uint32_t map = static_cast<uint32_t>(std::max_element(w.begin(), w.end()) - w.begin());
      CHECK(est.counts[s * n + map] == 1);
      uncertain += 1.0 - w[map] / sum;
      for (uint32_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(est.mean[s * n + i] - w[i] / sum));
    }
    MESSAGE("largest difference from the closed form ", worst, "; mean posterior mass off the MAP codeword ", uncertain / S);
    CHECK(uncertain / S > 0.05);  // the blocks are uncertain enough for the weights to matter
    CHECK(worst < 1e-5);          // float32 output of double sums
  };
  auto est = amp->Decode(p);
  REQUIRE(est.ok());
  REQUIRE(est->k_hat == 1);
  check(*est, false);
  p.start_counts = start.data();
  auto from = amp->Decode(p);
  REQUIRE(from.ok());
  check(*from, true);
  // The search keeps the start's sum; a start whose rows differ in sum is refused, naming the row.
  std::vector<int32_t> two = start;
  for (uint32_t s = 0; s < S; ++s) ++two[s * n + s % n];
  p.start_counts = two.data();
  auto est2 = amp->Decode(p);
  REQUIRE(est2.ok());
  for (uint32_t s = 0; s < S; ++s) CHECK(std::accumulate(&est2->counts[s * n], &est2->counts[s * n] + n, 0) == 2);
  ++two[3 * n];
  p.start_counts = two.data();
  auto bad = amp->Decode(p);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("start_counts row 3") != std::string::npos);
}

// A small decoder whose code learns quickly: n 32, d 16, 2 layers, K_a 2..6, lr 1e-2.
static AmpDaNetTrainOptions SmallCodeLearning(uint32_t steps) {
  AmpDaNetTrainOptions t;
  t.net.n = 32;
  t.net.d = 16;
  t.net.layers = 2;
  t.net.filters = 4;
  t.batch = 32;
  t.learning_rate = 1e-2;
  t.ka_min = 2;
  t.ka_max = 6;
  t.steps = steps;
  t.max_minutes = 1e9;
  return t;
}

TEST_CASE("learn_code trains C0 itself, and the saved file carries the trained code") {
  const uint32_t n = 32;
  Rng rng = MakeRng(61, "test");
  const CountData data = SyntheticCountData(n, 6, 4, 200, 1.1, rng);
  AmpDaNetTrainOptions t = SmallCodeLearning(30);
  auto mixed = TrainAmpDaNet(data, t);  // W only: C = rownorm(C0 W) with C0 as drawn
  t.learn_code = true;
  auto free = TrainAmpDaNet(data, t);
  REQUIRE(mixed.ok());
  REQUIRE(free.ok());
  const std::vector<float>& a = mixed.value()->codebook();
  const std::vector<float>& b = free.value()->codebook();
  double moved = 0.0;
  for (size_t i = 0; i < a.size(); ++i) moved = std::max(moved, static_cast<double>(std::abs(a[i] - b[i])));
  MESSAGE("largest entry difference between the codes trained with and without learn_code: ", moved);
  CHECK(moved > 1e-3);  // the same seed and batches: only C0's own steps tell them apart
  const std::string path = (std::filesystem::temp_directory_path() / "edgebed-learn-code-test.pt").string();
  REQUIRE(free.value()->Save(path).ok());
  auto loaded = LoadAmpDaNet(path);
  std::filesystem::remove(path);
  REQUIRE(loaded.ok());
  CHECK(loaded.value()->codebook() == b);  // the trained C0, not the drawn one
}

TEST_CASE("noise_follows_code: a code learned with the noise's scale differentiated lowers the sum's power") {
  // At one SNR of the superposed signal the noise is that signal's power over the SNR; differentiated
  // (the authors' training), the code also learns to shrink |x C|^2 for the counts it sees. The same
  // seed, data and steps with the scale held constant show what the decoding loss alone does to it.
  const uint32_t n = 32, d = 16;
  Rng rng = MakeRng(62, "test");
  const CountData data = SyntheticCountData(n, 6, 4, 200, 1.1, rng);
  AmpDaNetTrainOptions t = SmallCodeLearning(200);
  t.learn_code = true;
  t.snr_max_db = 6.0;  // where the noise is large enough for its scale's gradient to matter
  auto fixed = TrainAmpDaNet(data, t);
  t.noise_follows_code = true;
  auto follows = TrainAmpDaNet(data, t);
  REQUIRE(fixed.ok());
  REQUIRE(follows.ok());
  // E|x C|^2 / E[K] over held-out draws of the same counts. With unit-norm codewords and multinomial
  // counts it is 1 + E[K (K - 1)] / E[K] |C^T p|^2 (p the popularity): at least 1, and what a code can
  // take off is the excess over 1.
  std::vector<size_t> train_r, held_r;
  SplitRounds(data, &train_r, &held_r);
  Rng draw = MakeRng(63, "test");
  const CountBatch b = SampleCounts(data, held_r, 2000, 2, 6, draw);
  const double k = std::accumulate(b.ka.begin(), b.ka.end(), 0.0);
  auto sum_over_node = [&](const std::vector<float>& c) {
    const std::vector<float> y = SuperposeCounts(c, n, d, b.counts, 0.0, draw);  // no noise: no draw
    return std::inner_product(y.begin(), y.end(), y.begin(), 0.0) / k;
  };
  const double p_fixed = sum_over_node(fixed.value()->codebook()), p_follows = sum_over_node(follows.value()->codebook());
  MESSAGE("sum over one node: noise scale constant ", p_fixed, ", differentiated ", p_follows);
  CHECK(p_follows - 1.0 < 0.75 * (p_fixed - 1.0));  // measured: 0.14 against 0.28
}

TEST_CASE("a code with private dimensions: the popular codewords are orthogonal to every other") {
  const uint32_t n = 128, d = 64, m = 16;
  Rng rng = MakeRng(2, "code-test");
  const std::vector<float> c = PopularFirstCodebook(n, d, m, rng);
  REQUIRE(c.size() == static_cast<size_t>(n) * d);
  double worst_norm = 0.0, worst_private = 0.0, largest_other = 0.0;
  for (uint32_t i = 0; i < n; ++i) {
    double norm = 0.0;
    for (uint32_t j = 0; j < d; ++j) norm += c[i * d + j] * c[i * d + j];
    worst_norm = std::max(worst_norm, std::abs(norm - 1.0));
    for (uint32_t k = i + 1; k < n; ++k) {
      double dot = 0.0;
      for (uint32_t j = 0; j < d; ++j) dot += c[i * d + j] * c[k * d + j];
      (i < m ? worst_private : largest_other) = std::max(i < m ? worst_private : largest_other, std::abs(dot));
    }
  }
  CHECK(worst_norm < 1e-5);
  CHECK(worst_private == 0.0);   // rows 0..m-1 are unit vectors, the others are 0 there
  CHECK(largest_other > 0.1);    // the rest share d - m dimensions: a random code, not orthogonal
  // Zero private dimensions: RandomUnitCodebook itself.
  Rng a = MakeRng(2, "code-test"), b = MakeRng(2, "code-test");
  CHECK(PopularFirstCodebook(n, d, 0, a) == RandomUnitCodebook(n, d, b));
}

TEST_CASE("training refuses more private dimensions than the code has, naming the field") {
  Rng rng = MakeRng(3, "test");
  const CountData data = SyntheticCountData(32, 13, 2, 50, 1.1, rng);
  AmpDaNetTrainOptions t;
  t.net.n = 32;
  t.net.d = 16;
  t.net.code.private_dims = 16;
  t.steps = 1;
  auto dec = TrainAmpDaNet(data, t);
  REQUIRE_FALSE(dec.ok());
  CHECK(dec.status().message().find("private_dims (16) must be in [0, min(d - 1, n)] = [0, 15]") != std::string::npos);
}
