// The server's side of split learning (model.name = "slimsplit"): it holds the decoder that every
// node's encoder feeds (one shared tail), answers each training batch's bottleneck with gradients,
// averages the encoders after a round (SplitFed, split.heads = "average"), evaluates every width, and
// serves inference requests, recording what each took against the deadline. The bottleneck bytes
// cross the scenario's channel (channel/byte_link.h) before the decoder sees them.
// The transport (ROUTER socket, joins, liveness) is the parameter server's (server.cc); this class
// only sees messages, so a test can drive it directly.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "channel/byte_link.h"
#include "codecs/edgebed.pb.h"
#include "channel/channel_config.h"
#include "scenarios/split_config.h"
#include "splitnets/dataset.h"
#include "splitnets/slimmable.h"

namespace edgebed {

struct SplitServiceOptions {
  SplitConfig split;            // [split]: widths, heads, distillation, the bandwidth trace, inference
  SlimConfig slim;              // the network the widths slice
  float learning_rate = 0.05f;  // the decoder's SGD (the nodes' encoders take the same from join_ack)
  float momentum = 0.9f;
  uint32_t batch_size = 32;
  uint32_t local_epochs = 1;
  ChannelConfig channel;        // what the bottleneck crosses
  uint32_t nodes = 1;
  uint64_t seed = 1;
  int server_threads = 2;       // libtorch threads outside inference (one during it)
  struct Crash {
    uint32_t node = 0, round = 1;  // fault injection: this node's process dies half way through this round
  };
  std::vector<Crash> crashes;
};

class SplitService {
 public:
  static Result<std::unique_ptr<SplitService>> Create(const SplitServiceOptions& opt, Dataset test);
  ~SplitService();

  void FillJoinAck(wire::JoinAck* ack) const;
  // Round r's instruction for node `index`.
  void MakeRound(uint32_t r, uint32_t index, wire::SplitRound* out) const;
  // A training batch (request = 0) or an inference request from node `index`. On success `out` is
  // the reply; an error names the field at fault and the allowed values, and changes nothing.
  Status OnForward(uint32_t index, const wire::SplitForward& f, wire::SplitBackward* out);
  // What a forward must be before the decoder sees it (split_forward_check.h): an error names the
  // field and the allowed values.
  [[nodiscard]] Status CheckForward(const wire::SplitForward& f) const;
  // Training batches of several nodes, each checked (CheckForward) and then carried across
  // the channel; one decoder step takes them all (SlimDecoder::TrainBatches). One result per
  // forward, in order: the reply, or why it was refused (then nothing of it reached the decoder).
  struct Forward {
    uint32_t index = 0;
    const wire::SplitForward* f = nullptr;
  };
  std::vector<Result<wire::SplitBackward>> TrainForwards(const std::vector<Forward>& forwards);
  // Node `index` finished round r with this encoder (checked against the layout).
  Status OnDone(uint32_t index, uint32_t r, const wire::SplitDone& d);
  // After round r: averages the encoders (heads = average) and evaluates every width on the test
  // set (`final`: also over the channel). Returns the round's fields for metrics.jsonl.
  nlohmann::json EndRound(uint32_t r, bool final);

  // Inference pass `pass` (1-based) with `controller` ("adaptive" | "fixed"): the instruction for
  // the serving node.
  void MakeInference(uint32_t pass, const std::string& controller, wire::SplitInferIns* out);
  // Writes inference.csv and inference.png into `dir`; returns the passes' summary. Errors name the file.
  [[nodiscard]] Result<nlohmann::json> EndInference(const std::string& dir);

  nlohmann::json Summary() const;
  Status SaveModels(const std::string& dir) const;

  // What a checkpoint holds after a complete round: the decoder (parameters, batch-norm statistics, momentum), the
  // averaged encoder and every node's latest (heads = separate), the last evaluation. LoadState
  // takes it back (an error names what does not fit); the next round then sends every node its
  // encoder, so that nodes that restarted with the server start from where the run was.
  [[nodiscard]] Result<std::string> SaveState() const;
  [[nodiscard]] Status LoadState(const std::string& state);

 private:
  SplitService() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgebed
