// Digital OTA codecs: VQ with error feedback, symmetric functions from counts, the count data file,
// and the AMP-DA / AMP-DA-Net decoders.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <unistd.h>

#include "codecs/count_data.h"
#include "codecs/count_decoder.h"
#include "codecs/symmetric.h"
#include "codecs/vq.h"

using namespace edgebed;

namespace {

VqCodebook RandomCodebook(uint32_t n, uint32_t L, Rng& rng) {
  VqCodebook q;
  q.size = n;
  q.block_length = L;
  std::normal_distribution<float> g(0.0f, 1.0f);
  for (size_t i = 0; i < static_cast<size_t>(n) * L; ++i) q.centroids.push_back(g(rng));
  q.popularity.assign(n, 1.0 / n);
  return q;
}

// The reference a symmetric function is checked against: computed directly on the K nodes' values of
// one coordinate, by sorting them (written independently of codecs/symmetric.cc).
float Direct(std::vector<float> v, SymmetricFn fn, double trim) {
  std::sort(v.begin(), v.end());
  const size_t K = v.size();
  double sum = 0;
  for (float x : v) sum += x;
  switch (fn) {
    case SymmetricFn::kMean: return static_cast<float>(sum / K);
    case SymmetricFn::kMedian: return K % 2 ? v[K / 2] : static_cast<float>((static_cast<double>(v[K / 2 - 1]) + v[K / 2]) / 2);
    case SymmetricFn::kTrimmedMean: {
      const size_t cut = static_cast<size_t>(std::floor(trim * K));
      double s = 0;
      for (size_t i = cut; i < K - cut; ++i) s += v[i];
      return static_cast<float>(s / (K - 2 * cut));
    }
    case SymmetricFn::kMajority: {
      int pos = 0, neg = 0;
      double mag = 0;
      for (float x : v) {
        pos += x > 0;
        neg += x < 0;
        mag += std::fabs(x);
      }
      mag /= K;
      return static_cast<float>(pos > neg ? mag : (neg > pos ? -mag : 0.0));
    }
  }
  return NAN;
}

// Nodes' index vectors (K x S) drawn from a Zipf popularity, their count vectors (S x n).
struct Round {
  std::vector<std::vector<uint32_t>> idx;
  std::vector<float> counts;
};
Round DrawRound(uint32_t K, uint32_t S, uint32_t n, Rng& rng) {
  std::vector<double> w(n);
  for (uint32_t i = 0; i < n; ++i) w[i] = std::pow(i + 1.0, -1.1);
  std::discrete_distribution<uint32_t> pick(w.begin(), w.end());
  Round r;
  r.idx.assign(K, std::vector<uint32_t>(S));
  r.counts.assign(static_cast<size_t>(S) * n, 0.0f);
  for (uint32_t k = 0; k < K; ++k)
    for (uint32_t s = 0; s < S; ++s) {
      r.idx[k][s] = pick(rng);
      r.counts[static_cast<size_t>(s) * n + r.idx[k][s]] += 1.0f;
    }
  return r;
}

std::string TempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("edgebed-ota-test-" + std::to_string(::getpid()) + "-" + name)).string();
}

}  // namespace

TEST_CASE("k-means++ finds well separated clusters and sorts them by popularity") {
  Rng rng = MakeRng(3, "test");
  // 4 clusters in R^2 with 400, 300, 200, 100 members around (+-10, +-10).
  const float cx[4] = {10, -10, 10, -10}, cy[4] = {10, 10, -10, -10};
  const int members[4] = {400, 300, 200, 100};
  std::vector<float> data;
  std::normal_distribution<float> g(0.0f, 0.5f);
  for (int c = 0; c < 4; ++c)
    for (int i = 0; i < members[c]; ++i) {
      data.push_back(cx[c] + g(rng));
      data.push_back(cy[c] + g(rng));
    }
  KMeansOptions opt;
  opt.size = 4;
  opt.block_length = 2;
  Rng fit = MakeRng(1, "kmeans");
  auto q = FitCodebook(data.data(), data.size(), opt, fit);
  REQUIRE(q.ok());
  REQUIRE(q->Validate("test").ok());
  for (int c = 0; c < 4; ++c) {  // centroid r is cluster r (most popular first)
    CHECK(q->centroid(c)[0] == doctest::Approx(cx[c]).epsilon(0.02));
    CHECK(q->centroid(c)[1] == doctest::Approx(cy[c]).epsilon(0.02));
    CHECK(q->popularity[c] == doctest::Approx(members[c] / 1000.0));
  }
  Rng again = MakeRng(1, "kmeans");
  CHECK(FitCodebook(data.data(), data.size(), opt, again)->centroids == q->centroids);
}

TEST_CASE("quantisation picks the nearest centroid; the last block is zero-padded") {
  Rng rng = MakeRng(5, "test");
  const VqCodebook q = RandomCodebook(16, 4, rng);
  std::vector<float> v(4 * 9 + 3);
  std::normal_distribution<float> g(0.0f, 1.0f);
  for (float& x : v) x = g(rng);
  std::vector<uint32_t> idx(NumBlocks(v.size(), 4));
  REQUIRE(idx.size() == 10);
  NearestCentroids(q, v.data(), v.size(), idx.data());
  for (size_t s = 0; s < idx.size(); ++s) {
    float block[4] = {0, 0, 0, 0};
    for (size_t j = 0; j < 4 && s * 4 + j < v.size(); ++j) block[j] = v[s * 4 + j];
    float best = INFINITY;
    uint32_t arg = 0;
    for (uint32_t i = 0; i < q.size; ++i) {
      float d = 0;
      for (int j = 0; j < 4; ++j) d += (block[j] - q.centroid(i)[j]) * (block[j] - q.centroid(i)[j]);
      if (d < best) best = d, arg = i;
    }
    CHECK(idx[s] == arg);
  }
  std::vector<float> back(v.size());
  Dequantise(q, idx.data(), v.size(), back.data());
  CHECK(back[36] == q.centroid(idx[9])[0]);
  CHECK(back[38] == q.centroid(idx[9])[2]);
}

TEST_CASE("error feedback: what was sent over all rounds equals what was learned minus the last residual") {
  Rng rng = MakeRng(7, "test");
  const VqCodebook q = RandomCodebook(8, 5, rng);
  ErrorFeedbackQuantiser ef;
  const size_t N = 103;
  std::vector<double> learned(N, 0.0), sent(N, 0.0);
  std::normal_distribution<float> g(0.0f, 0.7f);
  for (int round = 0; round < 6; ++round) {
    std::vector<float> u(N);
    for (float& x : u) x = g(rng);
    std::vector<uint32_t> idx(NumBlocks(N, 5));
    ef.Quantise(q, u.data(), N, true, idx.data());
    std::vector<float> qv(N);
    Dequantise(q, idx.data(), N, qv.data());
    for (size_t i = 0; i < N; ++i) {
      learned[i] += u[i];
      sent[i] += qv[i];
    }
  }
  for (size_t i = 0; i < N; ++i) CHECK(sent[i] == doctest::Approx(learned[i] - ef.residual()[i]).epsilon(1e-4));
}

TEST_CASE("symmetric functions from counts equal the same functions computed on the nodes' quantised updates") {
  Rng rng = MakeRng(11, "test");
  const uint32_t n = 32, L = 6, S = 40;
  const VqCodebook q = RandomCodebook(n, L, rng);
  const size_t N = static_cast<size_t>(S) * L - 2;
  for (uint32_t K : {1u, 2u, 7u, 10u, 13u}) {
    const Round r = DrawRound(K, S, n, rng);
    std::vector<int32_t> counts(r.counts.begin(), r.counts.end());
    std::vector<std::vector<float>> node_q(K, std::vector<float>(N));
    for (uint32_t k = 0; k < K; ++k) Dequantise(q, r.idx[k].data(), N, node_q[k].data());
    for (SymmetricFn fn : {SymmetricFn::kMean, SymmetricFn::kTrimmedMean, SymmetricFn::kMedian, SymmetricFn::kMajority}) {
      SymmetricOptions opt;
      opt.fn = fn;
      opt.trim = 0.2;
      std::vector<float> out(N);
      REQUIRE(AggregateCounts(q, counts.data(), N, opt, out.data()).ok());
      for (size_t i = 0; i < N; ++i) {
        std::vector<float> vals(K);
        for (uint32_t k = 0; k < K; ++k) vals[k] = node_q[k][i];
        INFO("K " << K << " fn " << SymmetricFnName(fn) << " coordinate " << i);
        REQUIRE(out[i] == doctest::Approx(Direct(vals, fn, 0.2)).epsilon(1e-5));
      }
    }
  }
  SymmetricOptions bad;
  bad.fn = SymmetricFn::kTrimmedMean;
  bad.trim = 0.5;
  std::vector<int32_t> zeros(static_cast<size_t>(S) * n, 0);
  std::vector<float> out(N);
  CHECK(AggregateCounts(q, zeros.data(), N, bad, out.data()).message().find("ota.trim") != std::string::npos);
  CHECK(!ParseSymmetricFn("mode").ok());
}

TEST_CASE("the soft-count mean (digital OTA's default): the nodes' quantised mean for exact counts, linear in the counts") {
  Rng rng = MakeRng(17, "test");
  const uint32_t n = 16, L = 5, S = 30;
  const VqCodebook q = RandomCodebook(n, L, rng);
  const size_t N = static_cast<size_t>(S) * L - 3;  // a short last block
  for (uint32_t K : {1u, 4u, 11u}) {
    const Round r = DrawRound(K, S, n, rng);
    std::vector<float> soft(r.counts.begin(), r.counts.end());
    std::vector<float> out(N), direct(N, 0.0f), node(N);
    MeanFromSoftCounts(q, soft.data(), K, N, out.data());
    // Independently, from each node's indices: the mean of the K nodes' dequantised updates.
    for (uint32_t k = 0; k < K; ++k) {
      Dequantise(q, r.idx[k].data(), N, node.data());
      for (size_t i = 0; i < N; ++i) direct[i] += node[i] / static_cast<float>(K);
    }
    for (size_t i = 0; i < N; ++i) {
      INFO("K " << K << " coordinate " << i);
      REQUIRE(out[i] == doctest::Approx(direct[i]).epsilon(1e-5));
    }
  }
  // By hand: one block, codewords c0 = (1, 2), c1 = (-4, 0), c2 = (10, 10); soft counts (0.5, 1.5, -0.3):
  // the negative entry counts as 0, so (0.5 (1, 2) + 1.5 (-4, 0)) / k_hat = (-5.5, 1) / 2 = (-2.75, 0.5).
  VqCodebook h;
  h.size = 3;
  h.block_length = 2;
  h.centroids = {1, 2, -4, 0, 10, 10};
  h.popularity = {0.4, 0.4, 0.2};
  const float soft[] = {0.5f, 1.5f, -0.3f};
  float out[2];
  MeanFromSoftCounts(h, soft, 2, 2, out);
  CHECK(out[0] == doctest::Approx(-2.75));
  CHECK(out[1] == doctest::Approx(0.5));
  MeanFromSoftCounts(h, soft, 0, 2, out);  // k_hat = 0 (nothing detected) divides by 1, not by 0
  CHECK(out[0] == doctest::Approx(-5.5));
}

TEST_CASE("count data survives the file; a damaged file is refused with its name") {
  Rng rng = MakeRng(13, "test");
  const CountData d = SyntheticCountData(16, 5, 3, 7, 1.1, rng);
  const std::string path = TempPath("counts.bin");
  std::remove(path.c_str());
  for (const auto& r : d.rounds) REQUIRE(AppendCountRound(path, 16, r).ok());
  auto back = LoadCountData(path);
  REQUIRE(back.ok());
  REQUIRE(back->rounds.size() == 3);
  CHECK(back->n == 16);
  CHECK(back->rounds[2].indices == d.rounds[2].indices);
  CHECK(back->rounds[1].centroids == d.rounds[1].centroids);
  CHECK(back->rounds[0].popularity == d.rounds[0].popularity);
  // A batch of counts has K_a in range and each vector sums to its K_a.
  const CountBatch b = SampleCounts(back.value(), {0, 1}, 50, 2, 4, rng);
  for (size_t k = 0; k < 50; ++k) {
    CHECK(b.ka[k] >= 2);
    CHECK(b.ka[k] <= 4);
    CHECK(std::accumulate(b.counts.begin() + k * 16, b.counts.begin() + (k + 1) * 16, 0.0f) == b.ka[k]);
  }
  // Truncated, and not a count file at all.
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 5);
  CHECK(LoadCountData(path).status().message().find("truncated") != std::string::npos);
  std::ofstream(path) << "hello";
  CHECK(LoadCountData(path).status().message().find("not an edgebed count data file") != std::string::npos);
  std::remove(path.c_str());
}

TEST_CASE("count errors by kind: one count more or less, one count moved, anything else") {
  const float truth[5] = {2, 1, 0, 0, 3};
  auto kind = [&](std::vector<int32_t> e) { return ClassifyCountError(e.data(), truth, 5); };
  CHECK(kind({2, 1, 0, 0, 3}) == CountError::kExact);
  CHECK(kind({2, 1, 1, 0, 3}) == CountError::kOneMoreOrLess);
  CHECK(kind({2, 1, 0, 0, 2}) == CountError::kOneMoreOrLess);
  CHECK(kind({1, 1, 0, 1, 3}) == CountError::kOneMoved);
  CHECK(kind({2, 1, 0, 0, 5}) == CountError::kOther);      // two counts more on one codeword
  CHECK(kind({3, 1, 1, 0, 3}) == CountError::kOther);      // two more, on two codewords
  CHECK(kind({0, 1, 1, 1, 3}) == CountError::kOther);      // two counts moved
  CHECK(kind({2, 0, 0, 0, 4}) == CountError::kOneMoved);   // moved onto a codeword that already held some
}

TEST_CASE("AMP-DA: noise-free counts are recovered exactly and sum to K_a; symmetric functions follow exactly") {
  Rng rng = MakeRng(17, "test");
  const uint32_t n = 128, d = 64, L = 20, S = 300;
  auto dec_made = MakeAmpDa(n, d, 99);
  REQUIRE(dec_made.ok());
  auto dec = std::move(dec_made).value();
  const VqCodebook q = RandomCodebook(n, L, rng);
  for (uint32_t K : {7u, 10u, 13u}) {
    const Round r = DrawRound(K, S, n, rng);
    const std::vector<float> y = SuperposeCounts(dec->codebook(), n, d, r.counts, 0.0, rng);
    CountProblem p;
    p.y = y.data();
    p.blocks = S;
    p.noise_var = 0.0;
    p.k_max = 13;
    auto est = dec->Decode(p);
    REQUIRE(est.ok());
    CHECK(est->k_hat == K);
    size_t wrong = 0;
    for (uint32_t s = 0; s < S; ++s) {
      int sum = 0;
      for (uint32_t i = 0; i < n; ++i) {
        sum += est->counts[s * n + i];
        wrong += est->counts[s * n + i] != static_cast<int32_t>(r.counts[s * n + i]);
      }
      CHECK(sum == static_cast<int>(K));
    }
    CHECK(wrong == 0);
    // The decoded aggregate equals each function computed on the nodes' quantised updates.
    const size_t N = static_cast<size_t>(S) * L;
    for (SymmetricFn fn : {SymmetricFn::kMean, SymmetricFn::kTrimmedMean, SymmetricFn::kMedian, SymmetricFn::kMajority}) {
      SymmetricOptions opt;
      opt.fn = fn;
      std::vector<float> out(N);
      REQUIRE(AggregateCounts(q, est->counts.data(), N, opt, out.data()).ok());
      size_t bad = 0;
      for (size_t i = 0; i < N; ++i) {
        std::vector<float> vals;
        for (uint32_t k = 0; k < K; ++k) vals.push_back(q.centroid(r.idx[k][i / L])[i % L]);
        bad += std::fabs(out[i] - Direct(vals, fn, opt.trim)) > 1e-5f * (1.0f + std::fabs(out[i]));
      }
      CHECK(bad == 0);
    }
  }
}

TEST_CASE("AMP-DA: the error grows as the SNR falls, and no block is lost at 20 dB") {
  Rng rng = MakeRng(19, "test");
  const uint32_t n = 128, d = 64, S = 400;
  auto dec_made = MakeAmpDa(n, d, 5);
  REQUIRE(dec_made.ok());
  auto dec = std::move(dec_made).value();
  const Round r = DrawRound(10, S, n, rng);
  const std::vector<float> clean = SuperposeCounts(dec->codebook(), n, d, r.counts, 0.0, rng);
  std::vector<double> nmse;
  for (double snr : {0.0, 5.0, 10.0, 20.0}) {
    std::vector<float> y = clean;
    std::normal_distribution<float> g(0.0f, 1.0f);
    double noise_var = 0;
    for (uint32_t s = 0; s < S; ++s) {  // SNR of the superposed signal, block by block
      double p = 0;
      for (uint32_t j = 0; j < d; ++j) p += clean[s * d + j] * clean[s * d + j];
      const double var = p / d / std::pow(10.0, snr / 10.0);
      noise_var += var / S;
      for (uint32_t j = 0; j < d; ++j) y[s * d + j] += static_cast<float>(std::sqrt(var)) * g(rng);
    }
    CountProblem p;
    p.y = y.data();
    p.blocks = S;
    p.noise_var = noise_var;
    p.k_max = 13;
    auto est = dec->Decode(p);
    REQUIRE(est.ok());
    double e = 0, ref = 0;
    for (size_t i = 0; i < r.counts.size(); ++i) {
      e += (est->raw[i] - r.counts[i]) * (est->raw[i] - r.counts[i]);
      ref += r.counts[i] * r.counts[i];
    }
    nmse.push_back(e / ref);
    if (snr == 20.0) {
      size_t wrong = 0;
      for (size_t i = 0; i < r.counts.size(); ++i) wrong += est->counts[i] != static_cast<int32_t>(r.counts[i]);
      CHECK(wrong == 0);
    }
  }
  CHECK(nmse[0] > nmse[1]);
  CHECK(nmse[1] > nmse[2]);
  CHECK(nmse[2] > nmse[3]);
  CHECK(nmse[0] > 0.05);  // 0 dB is hard: the noise has the power of the whole sum
}

TEST_CASE("decoders refuse bad input by name") {
  auto dec_made = MakeAmpDa(16, 8, 1);
  REQUIRE(dec_made.ok());
  auto dec = std::move(dec_made).value();
  std::vector<float> y(8 * 3, 0.5f);
  CountProblem p;
  p.y = y.data();
  p.blocks = 3;
  p.k_max = 0;
  CHECK(dec->Decode(p).status().message().find("k_max") != std::string::npos);
  p.k_max = 4;
  y[5] = NAN;
  CHECK(dec->Decode(p).status().message().find("non-finite") != std::string::npos);
  CHECK(LoadAmpDaNet("/nonexistent/decoder.pt").status().message().find("/nonexistent/decoder.pt") != std::string::npos);
  AmpDaOptions bad;
  bad.code.private_dims = 8;  // must be < d = 8
  auto refused = MakeAmpDa(16, 8, 1, bad);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().message().find("private_dims (8)") != std::string::npos);
}

TEST_CASE("AMP-DA-Net trains, and a saved and reloaded decoder decodes exactly as before") {
  Rng rng = MakeRng(23, "test");
  const CountData data = SyntheticCountData(32, 13, 5, 200, 1.1, rng);
  AmpDaNetTrainOptions t;
  t.net.n = 32;
  t.net.d = 16;
  t.net.layers = 3;
  t.net.filters = 8;
  t.batch = 32;
  t.steps = 40;
  std::vector<double> val;
  t.report_every = 20;
  t.on_progress = [&](uint32_t, double loss, double nmse) {
    CHECK(std::isfinite(loss));
    val.push_back(nmse);
  };
  auto net = TrainAmpDaNet(data, t);
  REQUIRE(net.ok());
  REQUIRE(val.size() == 2);
  CHECK(std::isfinite(val.back()));
  // The learned code: unit-norm rows, and not the initial C0 any more.
  const std::vector<float>& C = net.value()->codebook();
  for (uint32_t i = 0; i < 32; ++i) {
    double norm = 0;
    for (uint32_t j = 0; j < 16; ++j) norm += C[i * 16 + j] * C[i * 16 + j];
    CHECK(norm == doctest::Approx(1.0).epsilon(1e-4));
  }
  Rng c0 = MakeRng(t.net.seed, "amp-da-net-c0");
  CHECK(RandomUnitCodebook(32, 16, c0) != C);

  const std::string path = TempPath("net.pt");
  REQUIRE(net.value()->Save(path).ok());
  auto back = LoadAmpDaNet(path);
  REQUIRE(back.ok());
  CHECK(back.value()->codebook() == C);  // the learned codebook, not the initial one written over it
  const Round r = DrawRound(9, 50, 32, rng);
  std::vector<float> y = SuperposeCounts(C, 32, 16, r.counts, 0.01, rng);
  CountProblem p;
  p.y = y.data();
  p.blocks = 50;
  p.noise_var = 0.01;
  p.k_max = 13;
  const std::vector<double> pop = data.rounds[0].popularity;
  p.popularity = pop.data();
  auto a = net.value()->Decode(p);
  auto b = back.value()->Decode(p);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a->raw == b->raw);
  CHECK(a->counts == b->counts);
  std::remove(path.c_str());
}

TEST_CASE("AMP-DA-Net decodes with the same posterior it was trained through (fused kernel == libtorch ops)") {
  for (uint64_t seed : {1u, 2u, 3u}) CHECK(PosteriorPathsMaxDiff(seed) < 1e-4);
}
