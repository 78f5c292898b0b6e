#include "codecs/count_data.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <numeric>

namespace edgebed {
namespace {
constexpr char kMagic[8] = {'E', 'B', 'C', 'O', 'U', 'N', 'T', '1'};

template <typename T>
void Put(std::ofstream& o, const T& v) { o.write(reinterpret_cast<const char*>(&v), sizeof(T)); }
template <typename T>
bool Get(std::ifstream& i, T* v) { return static_cast<bool>(i.read(reinterpret_cast<char*>(v), sizeof(T))); }
}  // namespace

Status AppendCountRound(const std::string& path, uint32_t n, const CountRound& r) {
  if (r.popularity.size() != n || r.indices.size() != static_cast<size_t>(r.nodes) * r.blocks ||
      r.centroids.size() != static_cast<size_t>(n) * r.block_length)
    return Status::InvalidArgument("count round: popularity or indices of the wrong size");
  bool fresh;
  {
    std::ifstream probe(path, std::ios::binary | std::ios::ate);
    fresh = !probe || probe.tellg() == 0;
  }
  std::ofstream o(path, std::ios::binary | std::ios::app);
  if (!o) return Status::IoError("cannot write count data to " + path);
  if (fresh) o.write(kMagic, sizeof(kMagic));
  Put(o, n);
  Put(o, r.round);
  Put(o, r.nodes);
  Put(o, r.blocks);
  Put(o, r.block_length);
  o.write(reinterpret_cast<const char*>(r.popularity.data()), static_cast<std::streamsize>(n * sizeof(double)));
  o.write(reinterpret_cast<const char*>(r.centroids.data()), static_cast<std::streamsize>(r.centroids.size() * 4));
  o.write(reinterpret_cast<const char*>(r.indices.data()), static_cast<std::streamsize>(r.indices.size() * 2));
  return o ? Status::Ok() : Status::IoError("write to " + path + " failed");
}

Result<CountData> LoadCountData(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("count data file " + path + " does not exist (make it with a run that sets ota.collect)");
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, kMagic, 8) != 0)
    return Status::InvalidArgument(path + " is not an edgebed count data file (no EBCOUNT1 header)");
  CountData data;
  for (;;) {
    uint32_t n;
    if (!Get(in, &n)) break;
    CountRound r;
    if (!Get(in, &r.round) || !Get(in, &r.nodes) || !Get(in, &r.blocks) || !Get(in, &r.block_length))
      return Status::InvalidArgument(path + ": truncated record header");
    if (data.n == 0) data.n = n;
    if (n != data.n || n == 0 || n > 65536)
      return Status::InvalidArgument(path + ": record of round " + std::to_string(r.round) + " has codebook size " +
                                     std::to_string(n) + ", the file started with " + std::to_string(data.n));
    if (r.nodes > 100000 || r.blocks > (1u << 28) || r.block_length > 4096) return Status::InvalidArgument(path + ": implausible record sizes");
    r.popularity.resize(n);
    r.centroids.resize(static_cast<size_t>(n) * r.block_length);
    r.indices.resize(static_cast<size_t>(r.nodes) * r.blocks);
    if (!in.read(reinterpret_cast<char*>(r.popularity.data()), static_cast<std::streamsize>(n * sizeof(double))) ||
        !in.read(reinterpret_cast<char*>(r.centroids.data()), static_cast<std::streamsize>(r.centroids.size() * 4)) ||
        !in.read(reinterpret_cast<char*>(r.indices.data()), static_cast<std::streamsize>(r.indices.size() * 2)))
      return Status::InvalidArgument(path + ": truncated record of round " + std::to_string(r.round));
    for (uint16_t i : r.indices)
      if (i >= n) return Status::InvalidArgument(path + ": an index >= the codebook size " + std::to_string(n));
    data.rounds.push_back(std::move(r));
  }
  if (data.rounds.empty()) return Status::InvalidArgument(path + " holds no round");
  return data;
}

void SplitRounds(const CountData& data, std::vector<size_t>* train, std::vector<size_t>* held_out) {
  const size_t total = data.rounds.size(), nval = std::min(total, std::max<size_t>(1, total / 5));
  train->resize(total - nval);
  held_out->resize(nval);
  std::iota(train->begin(), train->end(), size_t{0});
  std::iota(held_out->begin(), held_out->end(), total - nval);
}

CountBatch SampleCounts(const CountData& data, const std::vector<size_t>& rounds, uint32_t batch, uint32_t ka_min,
                        uint32_t ka_max, Rng& rng) {
  CountBatch b;
  const uint32_t n = data.n;
  b.counts.assign(static_cast<size_t>(batch) * n, 0.0f);
  b.popularity.resize(static_cast<size_t>(batch) * n);
  b.ka.resize(batch);
  std::vector<uint32_t> who;
  for (uint32_t k = 0; k < batch; ++k) {
    const CountRound& r = data.rounds[rounds[std::uniform_int_distribution<size_t>(0, rounds.size() - 1)(rng)]];
    const uint32_t hi = std::min(ka_max, r.nodes), lo = std::min(ka_min, hi);
    const uint32_t ka = std::uniform_int_distribution<uint32_t>(lo, hi)(rng);
    who.resize(r.nodes);
    std::iota(who.begin(), who.end(), 0u);
    for (uint32_t j = 0; j < ka; ++j) std::swap(who[j], who[j + std::uniform_int_distribution<uint32_t>(0, r.nodes - 1 - j)(rng)]);
    const uint32_t s = std::uniform_int_distribution<uint32_t>(0, r.blocks - 1)(rng);
    float* x = &b.counts[static_cast<size_t>(k) * n];
    for (uint32_t j = 0; j < ka; ++j) x[r.indices[static_cast<size_t>(who[j]) * r.blocks + s]] += 1.0f;
    for (uint32_t i = 0; i < n; ++i) b.popularity[static_cast<size_t>(k) * n + i] = static_cast<float>(r.popularity[i]);
    b.ka[k] = ka;
  }
  return b;
}

std::vector<double> ZipfPopularity(uint32_t n, double exponent) {
  std::vector<double> w(n);
  for (uint32_t i = 0; i < n; ++i) w[i] = std::pow(static_cast<double>(i + 1), -exponent);
  const double total = std::accumulate(w.begin(), w.end(), 0.0);
  for (double& v : w) v /= total;
  return w;
}

CountData SyntheticCountData(uint32_t n, uint32_t nodes, uint32_t rounds, uint32_t blocks, double zipf, Rng& rng) {
  CountData data;
  data.n = n;
  const std::vector<double> w = ZipfPopularity(n, zipf);
  std::discrete_distribution<uint32_t> pick(w.begin(), w.end());
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> centroids(static_cast<size_t>(n) * 20);
  for (float& c : centroids) c = g(rng);
  for (uint32_t r = 0; r < rounds; ++r) {
    CountRound cr;
    cr.round = r + 1;
    cr.nodes = nodes;
    cr.blocks = blocks;
    cr.popularity = w;
    cr.block_length = 20;
    cr.centroids = centroids;
    cr.indices.resize(static_cast<size_t>(nodes) * blocks);
    for (auto& i : cr.indices) i = static_cast<uint16_t>(pick(rng));
    data.rounds.push_back(std::move(cr));
  }
  return data;
}

CountError ClassifyCountError(const int32_t* estimate, const float* truth, uint32_t n) {
  int64_t l1 = 0, sum = 0;
  for (uint32_t i = 0; i < n; ++i) {
    const int64_t e = estimate[i] - static_cast<int64_t>(std::lround(truth[i]));
    l1 += e < 0 ? -e : e;
    sum += e;
  }
  if (l1 == 0) return CountError::kExact;
  if (l1 == 1) return CountError::kOneMoreOrLess;
  if (l1 == 2 && sum == 0) return CountError::kOneMoved;
  return CountError::kOther;
}

Result<CountData> MixCountData(CountData base, std::vector<CountData> extra) {
  std::vector<size_t> train, held;
  SplitRounds(base, &train, &held);
  std::vector<CountRound> rounds;
  for (size_t i : train) rounds.push_back(std::move(base.rounds[i]));
  for (size_t k = 0; k < extra.size(); ++k) {
    if (extra[k].n != base.n)
      return Status::InvalidArgument("count data to mix: set " + std::to_string(k + 1) + " has codebook size " +
                                     std::to_string(extra[k].n) + ", the base " + std::to_string(base.n));
    for (auto& r : extra[k].rounds) rounds.push_back(std::move(r));
  }
  for (size_t i : held) rounds.push_back(std::move(base.rounds[i]));
  base.rounds = std::move(rounds);
  return base;
}

}  // namespace edgebed
