// One round of local training as every node kind does it: take the global model from fit_ins, train
// on the node's samples, answer with the update. Shared by the node process and the node host.
#pragma once
#include <functional>
#include <vector>

#include "codecs/edgebed.pb.h"
#include "codecs/status.h"
#include "splitnets/learner.h"

namespace edgebed {

// Fills `res` (round, update = trained - received, samples, loss, train time). A Status that is not Ok
// names what was wrong with fit_ins.params (the caller answers BAD_TENSOR).
Status LocalFit(Learner& learner, const Dataset& data, const std::vector<uint32_t>& indices,
                const wire::FitIns& ins, const std::function<bool(float)>& on_progress, wire::FitRes* res);

// Evaluates evaluate_ins.params on the node's samples; fills `res`.
Status LocalEvaluate(Learner& learner, const Dataset& data, const std::vector<uint32_t>& indices,
                     const wire::EvaluateIns& ins, wire::EvaluateRes* res);

}  // namespace edgebed
