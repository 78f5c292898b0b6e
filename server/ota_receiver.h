// The receiving end of a superposing uplink (channel.uplink = analog_ota or digital_ota): what the
// server holds of a round until it closes, and how the channel's one output becomes the one update
// the strategy sees, weighted by the number of nodes that transmitted. For digital OTA it also fits
// the round's VQ codebook on the server's own samples (sent in fit_ins.vq), checks the nodes' index
// vectors against it, and decodes the superposed codewords into counts (AMP-DA, AMP-DA-Net, exact).
// The round loop asks it only "does the uplink hold updates" and "close the round".
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "channel/uplink.h"
#include "codecs/count_decoder.h"
#include "codecs/symmetric.h"
#include "codecs/vq.h"
#include "codecs/wire.h"
#include "scenarios/ota_config.h"
#include "splitnets/data_files.h"
#include "server/strategy.h"
#include "splitnets/learner.h"

namespace edgebed {

struct OtaRoundResult {
  bool held = false;        // the round had anything to superpose
  bool delivered = false;   // ... and an aggregate reached the strategy
  nlohmann::json info;      // metrics.jsonl's "ota" object of the round
};

struct OtaReceiverOptions {
  OtaConfig ota;                // [ota]: codebook, code, decoder, aggregate, error feedback, proxy share
  TrainOptions proxy_training;  // the proxy's local round, as a node trains (its seed is drawn per round)
  DataSpec data;                // where the proxy's rows come from
  ModelSpec model;              // the proxy's model (the run's)
  uint64_t seed = 1;
  uint32_t nodes = 1;           // ota.proxy_samples = 0: one node's share of the rows
};

class OtaReceiver {
 public:
  // Null (and OK) when the uplink carries updates one at a time (ideal, digital).
  [[nodiscard]] static Result<std::unique_ptr<OtaReceiver>> Create(const OtaReceiverOptions& opt, Uplink* uplink,
                                                                  const ParamSet& layout);
  ~OtaReceiver();
  OtaReceiver(const OtaReceiver&) = delete;
  OtaReceiver& operator=(const OtaReceiver&) = delete;

  // Round start: forgets the last round; digital OTA fits the codebook from `global` into ins->vq.
  [[nodiscard]] Status BeginRound(uint32_t round, const ParamSet& global, wire::FitIns* ins);
  // Digital OTA: an answer is one index per block of this round's codebook, and no update.
  [[nodiscard]] Status CheckIndices(const wire::FitRes& res) const;
  void HoldIndices(uint32_t node_index, std::vector<uint32_t> indices);
  void HoldUpdate(FitResult r);  // analog OTA: the update waits for the others
  // Everything held crosses the channel at once; the decoded aggregate goes into `strategy`.
  OtaRoundResult CloseRound(uint32_t round, Strategy& strategy, LinkAccounting& link);

 private:
  OtaReceiver(const OtaReceiverOptions& opt, Uplink* uplink, const ParamSet& layout);
  Status SetUpDigitalOta();
  Status FitRoundCodebook(uint32_t r, const ParamSet& global);
  OtaRoundResult Superpose(uint32_t round, Strategy& strategy, LinkAccounting& link);
  OtaRoundResult DecodeCounts(uint32_t round, Strategy& strategy, LinkAccounting& link);

  OtaReceiverOptions opt_;
  Uplink* uplink;  // the server's; outlives this
  std::vector<TensorSpec> specs_;
  size_t model_values_ = 0;
  double fit_s_ = 0.0;
  std::vector<FitResult> ota_updates;  // analog OTA: the round's updates, transmitted when it closes
  // Digital OTA: the decoder (null: counts known exactly, error-free digital), the URA code the
  // nodes transmit with, the server's own data it fits each round's VQ codebook on, the round's
  // codebook and every answer's indices (what each node's radio sent).
  std::unique_ptr<CountDecoder> decoder;
  std::vector<float> ura_code;
  uint32_t ura_d = 0;
  std::unique_ptr<Learner> proxy_learner;
  Dataset proxy_data;
  std::vector<uint32_t> proxy_indices;
  VqCodebook vq;
  SymmetricOptions symmetric;
  std::vector<std::pair<uint32_t, std::vector<uint32_t>>> vq_answers;  // (node index, indices)
};

}  // namespace edgebed
