// What SplitService holds (private to server/): for split_service.cc (rounds, training steps,
// evaluation), split_inference.cc (inference requests and their report) and split_state.cc (the
// checkpoint's state and the saved models).
#pragma once
#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "channel/byte_link.h"
#include "codecs/activation_codec.h"
#include "codecs/rng.h"
#include "server/inference_report.h"
#include "server/split_service.h"
#include "splitnets/learner.h"
#include "splitnets/split_training.h"

namespace edgebed {

struct SplitService::Impl {
  using json = nlohmann::json;
  using Clock = std::chrono::steady_clock;

  SplitServiceOptions opt;
  SlimConfig cfg;
  Dataset test;
  std::unique_ptr<SlimDecoder> dec;
  std::unique_ptr<SlimEncoder> eval_enc;  // the averaged encoder (or each node's, in turn)
  std::unique_ptr<ByteLink> link;
  BandwidthTrace trace;
  ParamSet head;                          // heads = average: what every node starts the round from
  std::map<uint32_t, std::pair<ParamSet, uint64_t>> heads;  // node index -> (encoder, samples) of this round
  std::map<uint32_t, ParamSet> last_heads;                  // heads = separate: each node's latest
  bool resend_heads = false;  // resumed: the next round sends every node its encoder (heads = separate)
  // The round in progress.
  ByteLinkStats link_stats;
  uint64_t up_bytes = 0, down_bytes = 0, head_bytes = 0, steps = 0, samples = 0;
  uint64_t decoder_steps = 0;  // decoder steps (one per TrainForwards call): steps / decoder_steps = nodes per step
  double loss_sum = 0.0, decoder_s = 0.0;
  double quant_err = 0.0, grad_power = 0.0;
  std::vector<float> decoded;  // an 8-bit gradient as the node decodes it  // gradient_bits = 8: sum of squared errors, of squared values
  std::vector<double> bytes_by_width;
  json last_eval;
  // Inference.
  std::vector<InferRow> rows;
  std::map<uint32_t, std::string> pass_controller;

  int threads = 0;  // libtorch threads now set
  void Threads(int n) {
    if (n != threads) SetTorchThreads(n);
    threads = n;
  }

  // The bytes of bottleneck k after the channel, dequantised.
  Status Receive(uint32_t index, const wire::SplitForward& f, int k, uint64_t transfer, std::vector<float>* act,
                 ByteLinkStats* st);
  // Every width on the test set with the averaged encoder (or each node's, weighted), and over the
  // channel when asked: the round's accuracy_by_width, loss_by_width, channel_accuracy_by_width.
  json Evaluate(bool over_channel);
};

}  // namespace edgebed
