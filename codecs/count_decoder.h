// Decoders for digital over-the-air aggregation with a shared (URA) codebook. Every active node maps
// each block's VQ index i to the same codeword C[i] (n x d, unit-norm rows, d real channel uses = d/2
// complex); the channel sums the codewords and adds noise, so per block s the server receives
//   y_s = x_s^T C + w_s,   w_s ~ N(0, noise_var I_d),
// where x_s in Z>=0^n counts how many nodes sent each codeword (sum = K_a). A decoder estimates the
// count vectors of all blocks of a round at once (S x n, batched: dense algebra, no loop per block):
// - AMP-DA (Qiao et al., MD-AirComp, arXiv 2405.15969): approximate message passing with a discrete
//   prior over counts {0..K}, EM updates of the prior, damping; C a random Gaussian code.
// - AMP-DA-Net (Tarizzo et al., arXiv 2512.19777): T unrolled AMP layers with learned per-layer
//   parameters, a Poisson-popularity prior, a 1-D CNN denoiser over the popularity-sorted codeword
//   axis and a learned codebook C = rownorm(C0 W), trained end to end (TrainAmpDaNet).
// Both finish with the same post-processing: keep the K_hat largest entries, least-squares refit on
// them, round greedily so the counts sum to K_hat (K_hat = the mode over blocks of the rounded sums).
// The interface is torch-free; the implementation (count_decoder.cc) is libtorch.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "codecs/count_data.h"
#include "codecs/rng.h"
#include "codecs/status.h"

namespace edgebed {

struct CountProblem {
  const float* y = nullptr;        // blocks x d, row-major
  size_t blocks = 0;
  double noise_var = 0.0;          // per real entry, the receiver's estimate (AMP refines it)
  uint32_t k_max = 0;              // upper bound on the number of active nodes (those selected)
  const double* popularity = nullptr;  // n codeword shares (sorted, most popular first); null = uniform
  // Post-processing ends with a MAP swap search (amp_kernels.h: SwapSearch) under a Poisson count
  // prior of mean K_hat x popularity. It lowers the counts' NMSE on independent (Zipf) choices at
  // every SNR but raises it at 5 dB on a real federation's counts, where nodes choose alike and
  // counts are far from Poisson (BENCHMARKS.md), so federations leave it off.
  bool map_refine = false;
  // With map_refine, CountEstimate::mean: the posterior mean E[x | y] under that prior, by Gibbs
  // sampling from the MAP counts (K_hat draws per sweep, the first fifth of the sweeps discarded);
  // block s draws from MakeRng(seed, "count-gibbs", s).
  uint32_t posterior_sweeps = 100;
  uint64_t seed = 1;
  // Optional, blocks x n, each row summing to the same K: with map_refine, the MAP search and the
  // Gibbs chain start here instead of at the decoder's rounded estimate. `ota nmse --from-truth`
  // starts them at the true counts: the posterior mean is then the code's MMSE estimate (up to the
  // chain's mixing), which no decoder beats, so its gap to a decoder's is what decoding can still win.
  const int32_t* start_counts = nullptr;
};

struct CountEstimate {
  std::vector<float> raw;       // blocks x n: the decoder's soft estimate before post-processing
  std::vector<int32_t> counts;  // blocks x n: after top-K, refit, rounding and a MAP swap search; each row sums to k_hat
  std::vector<float> mean;      // blocks x n: the posterior mean E[x | y] (map_refine only; else empty)
  uint32_t k_hat = 0;
  int iterations = 0;           // AMP iterations / unrolled layers run
  double flops = 0.0;           // floating-point operations the decode took (counted, see .cc)
  double seconds = 0.0;
};

class CountDecoder {
 public:
  virtual ~CountDecoder() = default;
  virtual std::string name() const = 0;  // "amp_da" | "amp_da_net"
  uint32_t n() const { return n_; }
  uint32_t d() const { return d_; }
  // The URA codebook the nodes transmit with (n x d, unit-norm rows); the receiver decodes against it.
  const std::vector<float>& codebook() const { return codebook_; }
  Result<CountEstimate> Decode(const CountProblem& p);
  // Saves the decoder (codebook and, for AMP-DA-Net, every learned parameter) to a torch archive.
  virtual Status Save(const std::string& path) const = 0;

 protected:
  CountDecoder(uint32_t n, uint32_t d) : n_(n), d_(d) {}
  virtual Status DoDecode(const CountProblem& p, CountEstimate* out) = 0;
  uint32_t n_, d_;
  std::vector<float> codebook_;
};

// n x d Gaussian rows scaled to unit norm: AMP-DA's code, and AMP-DA-Net's C0.
std::vector<float> RandomUnitCodebook(uint32_t n, uint32_t d, Rng& rng);
// RandomUnitCodebook with the first `private_dims` rows (the most popular codewords: the VQ sorts its
// centroids so) replaced by the first unit vectors, and every other row drawn over the remaining
// d - private_dims dimensions: the popular codewords are orthogonal to all others, which the prior
// favours in every confusion, and the rare ones share the rest. private_dims < d.
std::vector<float> PopularFirstCodebook(uint32_t n, uint32_t d, uint32_t private_dims, Rng& rng);

// Which code a decoder transmits with (built by DesignedCodebook, codecs/codebook_design.h).
struct CodeDesign {
  uint32_t private_dims = 0;    // PopularFirstCodebook(n, d, private_dims); 0: RandomUnitCodebook
  bool low_coherence = false;   // the shared rows then descended to a low coherence (LowCoherenceCodebook)
  // Set: then descended on the union bound of single moved counts at this SNR of the sum [dB], under
  // a Zipf(pairwise_zipf) popularity and 7..13 active nodes (PairwiseErrorCodebook)
  std::optional<double> pairwise_snr_db;
  double pairwise_zipf = 1.1;
  bool pairwise_per_node = false;  // pairwise_snr_db is each node's SNR, not the sum's
  Status Validate(uint32_t n, uint32_t d) const;  // private_dims in [0, min(d - 1, n)]
};

struct AmpDaOptions {
  CodeDesign code;              // validated by MakeAmpDa
  uint32_t iterations = 50;     // at most
  double damping = 0.3;         // share of the previous estimate kept each iteration
  double tolerance = 1e-5;      // stop when the mean squared change of the estimate falls below
  size_t chunk_blocks = 1024;   // blocks decoded together (one EM prior per chunk)
};
// AMP-DA on the code opt.code draws from `seed`; an invalid design is an error naming the field.
Result<std::unique_ptr<CountDecoder>> MakeAmpDa(uint32_t n, uint32_t d, uint64_t seed, const AmpDaOptions& opt = {});

struct AmpDaNetOptions {
  uint32_t n = 128, d = 64;
  uint32_t layers = 10;         // T unrolled AMP layers
  uint32_t filters = 32;        // CNN denoiser width (3 conv layers, kernel 3)
  CodeDesign code;              // C0 (validated by TrainAmpDaNet)
  uint64_t seed = 1;            // C0 and the initial weights
};

struct AmpDaNetTrainOptions {
  AmpDaNetOptions net;
  uint32_t batch = 128;          // blocks per step
  double learning_rate = 1e-3;   // Adam
  uint32_t steps = 3000;         // at most
  double max_minutes = 25.0;     // stop early when the time is up
  double snr_min_db = 0.0, snr_max_db = 20.0;  // SNR drawn uniformly per batch
  uint32_t ka_min = 7, ka_max = 13;            // active nodes drawn uniformly per batch
  uint64_t seed = 1;
  std::string init_from;         // a decoder file to start from (same n, d, layers, filters); empty: fresh.
                                 // With a designed net.code (private_dims > 0, low_coherence or pairwise) its code is
                                 // replaced (C0 as a fresh decoder's, W = I).
  // The loss of a batch is log(its squared error) instead of the error itself, so every SNR of the
  // range pulls equally (the raw error is dominated by the lowest SNRs' large errors).
  bool log_loss = false;
  // C0 is trained too: each codeword moves freely, where W alone mixes the same d columns of C0 for
  // every codeword (C = rownorm(C0 W)). The saved file keeps its format (C0 is a buffer).
  bool learn_code = false;
  // The noise's scale (each block's received power over the SNR) is differentiated, so a learned code
  // also lowers the superposed signal's power, which lowers the noise at one SNR of the sum; the
  // authors' training does this (their add_awgn_noise). Off: the scale is a constant of each step, and
  // the code gains only what it gains at a fixed noise (BENCHMARKS.md, issue 20).
  bool noise_follows_code = false;
  bool cosine_decay = false;     // learning rate from `learning_rate` to 1% of it (cosine) over `steps` or
                                 // `max_minutes`, whichever runs out first
  // Called every `report_every` steps with (step, loss, validation NMSE of the counts).
  std::function<void(uint32_t, double, double)> on_progress;
  uint32_t report_every = 100;
};

// Trains AMP-DA-Net on count vectors collected from an error-free federated run.
Result<std::unique_ptr<CountDecoder>> TrainAmpDaNet(const CountData& data, const AmpDaNetTrainOptions& opt);
Result<std::unique_ptr<CountDecoder>> LoadAmpDaNet(const std::string& path);
// The decoder that ships with edgebed (codecs/decoders/amp_da_net_follow.pt in the source tree;
// remade by tools/train_decoder), used when a scenario names none.
std::string DefaultDecoderPath();

// Noise variance per real entry at a given SNR: each node's codeword (unit norm over d real entries)
// has power 1/d per entry at the receiver after channel pre-inversion; noise_var = 1 / (d snr).
double UraNoiseVar(uint32_t d, double snr_db);

// y = x C + noise (blocks x d) for count vectors `counts` (blocks x n): the channel as the tests and
// the NMSE benchmark see it without the federation.
std::vector<float> SuperposeCounts(const std::vector<float>& codebook, uint32_t n, uint32_t d,
                                   const std::vector<float>& counts, double noise_var, Rng& rng);

// The count posterior has two implementations: libtorch operations (differentiable: AMP-DA-Net
// trains through them) and the fused kernel (count_kernel.h: decoding). Both on the same random
// input, shared and Poisson priors, with a temperature; returns the largest absolute difference of
// the posterior means and variances. A trained decoder must decode as it was trained (tests).
double PosteriorPathsMaxDiff(uint64_t seed);

// GFLOP/s of a plain libtorch float matmul (m x k) * (k x n), best of `reps`: the dense reference.
double DenseMatmulGflops(int64_t m, int64_t k, int64_t n, int reps);

}  // namespace edgebed
