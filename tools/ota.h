// `edgebed ota ...`: the digital OTA decoders outside a federation.
//   ota train  --data counts.bin --out decoder.pt   train AMP-DA-Net on collected count vectors
//   ota nmse   --data counts.bin --net decoder.pt   NMSE of counts and aggregate vs SNR, both decoders
// and `edgebed bench decode`: one round of a 270k-parameter update decoded by both, FLOP/s beside a
// dense matmul's.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "codecs/count_decoder.h"

namespace edgebed {

struct OtaToolOptions {
  std::string data;            // count data file; empty = synthetic Zipf(`zipf`) counts
  double zipf = 1.1;           // synthetic data: the codewords' popularity exponent (0 = uniform)
  std::string net;             // AMP-DA-Net decoder file
  std::string out;             // decoder file (train) or output folder (nmse)
  uint32_t n = 128, d = 64, layers = 10, filters = 32;
  CodeDesign code;             // train: C0; nmse: AMP-DA's code
  uint32_t steps = 4000, batch = 128;
  double minutes = 25.0, learning_rate = 1e-3;
  uint64_t seed = 1;
  std::vector<double> snrs = {0, 3, 5, 10, 15, 20};
  uint32_t blocks = 2000;      // nmse: blocks decoded per SNR
  uint32_t ka_min = 7, ka_max = 13;
  double target_nmse = 1e-2;
  // train: synthetic Zipf rounds (30 per exponent, seeded) mixed into the data, the SNR range,
  // a decoder to start from, and the loss and schedule (AmpDaNetTrainOptions).
  std::vector<double> mix_zipf;
  double snr_min_db = 0.0, snr_max_db = 20.0;
  std::string init;
  bool log_loss = false, cosine = false, learn_code = false, noise_follows_code = false;
  bool snr_per_node = false;   // nmse: SNR of one node's codeword, not of the superposed signal
  bool from_truth = false;     // nmse: the MAP search and the posterior mean start at the true counts
  bool map_refine = false;     // nmse: post-processing ends with the MAP swap search (CountProblem)
};

int RunOtaTrain(const OtaToolOptions& opt);
int RunOtaNmse(const OtaToolOptions& opt);
int RunDecodeBench(const OtaToolOptions& opt, int reps);

}  // namespace edgebed
