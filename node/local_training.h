// One round of local training as every node kind does it: take the global model from fit_ins, train
// on the node's samples, answer with the update. Shared by the node process and the node host.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "codecs/edgebed.pb.h"
#include "codecs/status.h"
#include "codecs/vq.h"
#include "codecs/wire.h"
#include "splitnets/learner.h"

namespace edgebed {

// Where a node's training rows come from: the data files (data_dir overrides the server's folder), or
// the node's own partition file (`edgebed partition`), when the node has no copy of the data set.
struct NodeData {
  std::string data_dir;
  std::string partition_file;
};

// What a join_ack tells nodes first..first+count-1 to prepare: their training rows alone (read from
// the files, nothing else, or from the node's partition file), each node's share as positions in
// them, and the model (checked on one batch). Errors name the file or the field.
struct NodeSetup {
  Dataset data;                              // the hosted nodes' rows only
  std::vector<std::vector<uint32_t>> parts;  // by node index: positions in data (empty for nodes not hosted)
  std::unique_ptr<Learner> learner;          // null for split learning (join_ack.split set)
};
Result<NodeSetup> PrepareFromJoinAck(const wire::JoinAck& ack, const NodeData& where, uint32_t first, uint32_t count);

// Fills `res` (round, update = trained - received, samples, loss, train time). A Status that is not Ok
// names what was wrong: fit_ins.params (the caller answers BAD_TENSOR) or the training itself (a
// module that throws, a loss that is not finite). With fit_ins.vq set
// (digital OTA) the update is quantised by `vq`, the node's own error-feedback state, and sent as
// fit_res.vq_indices. fit_ins.corrupt_factor (fault injection) scales the update first.
// With fit_ins.control set (SCAFFOLD, option II of Karimireddy et al. 2020), every gradient gets
// c - c_i added, and afterwards c_i+ = c_i - c + (x - y) / (K lr) for the trained values (K the steps
// taken); fit_res.control_delta carries c_i+ - c_i and `control` (the node's c_i, kept across rounds;
// empty = zeros) becomes c_i+. With `att` the update's data leave as a frame of their own (sent
// with the Envelope by SendEnvelope, no copy); without, inline in fit_res.update.
Status LocalFit(Learner& learner, const Dataset& data, const std::vector<uint32_t>& indices,
                const wire::FitIns& ins, const std::function<bool(float)>& on_progress, wire::FitRes* res,
                wire::Attachments* att, ErrorFeedbackQuantiser* vq, std::vector<float>* control);

// What a node answers when LocalFit or LocalEvaluate fails: TRAINING_FAILED when the training or
// evaluation itself failed, else BAD_TENSOR (fit_ins or evaluate_ins was at fault).
wire::ErrorCode FailureCode(const Status& st);

// Evaluates evaluate_ins.params on the node's samples; fills `res`.
Status LocalEvaluate(Learner& learner, const Dataset& data, const std::vector<uint32_t>& indices,
                     const wire::EvaluateIns& ins, wire::EvaluateRes* res);

}  // namespace edgebed
