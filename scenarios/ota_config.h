// The [ota] section of a scenario on its own, for the pieces it configures (the server's OTA
// receiver) without the whole Scenario.
#pragma once
#include <cstdint>
#include <string>

namespace edgebed {

// [ota]: digital over-the-air aggregation (channel.uplink = "digital_ota"). Nodes vector-quantise
// their updates with a codebook the server fits each round and send one codeword per block; the
// server decodes the superposed codewords into counts and aggregates from them.
struct OtaConfig {
  std::string decoder = "amp_da";  // exact (counts known: error-free digital) | amp_da | amp_da_net
  std::string decoder_path;        // amp_da_net decoder file; empty = codecs/decoders/amp_da_net_follow.pt
  uint32_t block_length = 20;      // L values per VQ block
  uint32_t codebook_size = 128;    // n centroids = URA codewords (log2 n bits per block)
  uint32_t code_length = 64;       // d real channel uses per block (amp_da; amp_da_net takes its own)
  bool error_feedback = true;
  uint32_t kmeans_iterations = 10;
  uint32_t proxy_samples = 0;      // training samples the server fits the codebook on; 0 = a node's share
  std::string aggregate = "mean";  // mean | trimmed_mean | median | majority
  double trim = 0.2;               // trimmed_mean: share cut at each end, [0, 0.5)
  bool soft_mean = true;           // mean: from the decoder's soft counts (not rounded), less error at low SNR
  uint32_t amp_iterations = 50;
  double amp_damping = 0.3;
  std::string collect;             // append each round's VQ indices here (AMP-DA-Net training data)
};

}  // namespace edgebed
