// Count vectors from real federated updates: what AMP-DA-Net trains on and the NMSE benchmark
// decodes. A federation run with `ota.collect = "<file>"` appends, every round, each participant's VQ
// indices (pre-channel) and the codeword popularity the server estimated; any subset of a round's
// participants then gives one count vector per block (x_s[i] = how many of them sent codeword i).
// File: "EBCOUNT1" then records {u32 n, u32 round, u32 nodes, u32 blocks, u32 L, f64 popularity[n],
// f32 centroids[n][L], u16 indices[nodes][blocks]}, little-endian.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "codecs/rng.h"
#include "codecs/status.h"

namespace edgebed {

struct CountRound {
  uint32_t round = 0;
  uint32_t nodes = 0;               // participants whose indices are stored
  uint32_t blocks = 0;              // S
  uint32_t block_length = 0;        // L
  std::vector<double> popularity;   // n
  std::vector<float> centroids;     // n x L: the VQ codebook of the round
  std::vector<uint16_t> indices;    // nodes x blocks
};

struct CountData {
  uint32_t n = 0;
  std::vector<CountRound> rounds;
};

Status AppendCountRound(const std::string& path, uint32_t n, const CountRound& r);
Result<CountData> LoadCountData(const std::string& path);

// The rounds a decoder trains on and the rounds held out from training (the last fifth, at least one):
// TrainAmpDaNet validates on the held-out rounds and `edgebed ota nmse` evaluates on them.
void SplitRounds(const CountData& data, std::vector<size_t>* train, std::vector<size_t>* held_out);

// A batch of count vectors: for each of `batch` draws, a round from `rounds` (indices into
// data.rounds), K_a nodes drawn uniformly in [ka_min, ka_max] (at most the round's participants) and a
// block; counts is batch x n (float), popularity batch x n, ka per draw.
struct CountBatch {
  std::vector<float> counts, popularity;
  std::vector<uint32_t> ka;
};
CountBatch SampleCounts(const CountData& data, const std::vector<size_t>& rounds, uint32_t batch, uint32_t ka_min,
                        uint32_t ka_max, Rng& rng);

// Zipf(exponent) popularity over n codewords, most popular first (sums to 1).
std::vector<double> ZipfPopularity(uint32_t n, double exponent);

// Synthetic data for tests and benchmarks: `rounds` rounds of `nodes` nodes whose indices are drawn
// independently per block from a Zipf(`zipf`) popularity over n codewords (the statistics the
// AMP-DA-Net paper's synthetic figures were measured with).
CountData SyntheticCountData(uint32_t n, uint32_t nodes, uint32_t rounds, uint32_t blocks, double zipf, Rng& rng);

// `base` with the rounds of `extra` (same n) placed before base's held-out rounds, so SplitRounds of the
// mixture still holds out every round it held out of `base` (and some of the extra ones).
Result<CountData> MixCountData(CountData base, std::vector<CountData> extra);

// How one block's integer counts differ from the true ones. With unit-norm codewords a count more or
// less on one codeword moves the received signal by |c_i| = 1 whatever the code; one count moved from
// codeword i to k moves it by |c_i - c_k|, which the code sets.
enum class CountError { kExact, kOneMoreOrLess, kOneMoved, kOther };
CountError ClassifyCountError(const int32_t* estimate, const float* truth, uint32_t n);

}  // namespace edgebed
