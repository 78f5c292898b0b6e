#include "node/local_training.h"

#include "codecs/wire.h"

namespace edgebed {

Status LocalFit(Learner& learner, const Dataset& data, const std::vector<uint32_t>& indices,
                const wire::FitIns& ins, const std::function<bool(float)>& on_progress, wire::FitRes* res) {
  ParamSet global;
  EDGEBED_RETURN_IF_ERROR(wire::FromTensors(ins.params(), "fit_ins.params", &learner.specs(), &global));
  EDGEBED_RETURN_IF_ERROR(learner.SetParams(global));
  TrainOptions topt;
  topt.epochs = static_cast<int>(ins.local_epochs());
  topt.batch_size = static_cast<int>(ins.batch_size());
  topt.learning_rate = ins.learning_rate();
  topt.momentum = ins.momentum();
  topt.seed = ins.seed();
  topt.on_progress = on_progress;
  const TrainStats ts = learner.Train(data, indices, topt);
  ParamSet update = learner.GetParams();
  for (size_t i = 0; i < update.flat.size(); ++i) update.flat[i] -= global.flat[i];
  res->set_round(ins.round());
  wire::ToTensors(update, res->mutable_update());
  res->set_num_samples(ts.samples);
  res->set_train_loss(static_cast<float>(ts.mean_loss));
  res->set_train_time_s(ts.seconds);
  res->set_virtual_time_s(ts.seconds);  // a real device's clock; a node host replaces it
  return Status::Ok();
}

Status LocalEvaluate(Learner& learner, const Dataset& data, const std::vector<uint32_t>& indices,
                     const wire::EvaluateIns& ins, wire::EvaluateRes* res) {
  ParamSet p;
  EDGEBED_RETURN_IF_ERROR(wire::FromTensors(ins.params(), "evaluate_ins.params", &learner.specs(), &p));
  EDGEBED_RETURN_IF_ERROR(learner.SetParams(p));
  const EvalStats es = learner.Evaluate(data, &indices);
  res->set_round(ins.round());
  res->set_num_samples(es.samples);
  res->set_loss(static_cast<float>(es.loss));
  res->set_accuracy(static_cast<float>(es.accuracy));
  return Status::Ok();
}

}  // namespace edgebed
