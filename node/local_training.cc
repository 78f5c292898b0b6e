#include "node/local_training.h"

#include <cmath>

#include "codecs/wire.h"
#include "splitnets/partition.h"
#include "splitnets/transfer.h"

namespace edgebed {

Result<NodeSetup> PrepareFromJoinAck(const wire::JoinAck& ack, const std::string& data_dir) {
  NodeSetup setup;
  InstallCountingAllocator();  // fit_res reports measured peak training memory
  auto data = LoadFashionMnist(data_dir.empty() ? DefaultFashionMnistDir() : data_dir, true, ack.train_limit());
  if (!data.ok()) return data.status();
  setup.data = std::move(data.value());
  std::vector<int> classes(ack.classes().begin(), ack.classes().end());
  for (int c : classes)
    if (c < 0 || c > 9) return Status::InvalidArgument("join_ack.classes: class " + std::to_string(c) + " is out of range 0..9");
  if (!classes.empty()) setup.data = SelectClasses(setup.data, classes);
  ModelSpec model;
  model.name = ack.model();
  model.num_classes = classes.empty() ? 10 : static_cast<int>(classes.size());
  if (ack.has_transfer()) {
    const auto& t = ack.transfer();
    auto crc = FileCrc32(t.backbone());
    if (!crc.ok()) return Status::NotFound("transfer.backbone: " + crc.status().message() + " (every node needs the server's backbone file)");
    if (crc.value() != t.backbone_crc32())
      return Status::InvalidArgument("transfer.backbone " + t.backbone() + " is not the server's file (crc32 " +
                                     std::to_string(crc.value()) + ", the server's " + std::to_string(t.backbone_crc32()) + ")");
    model.transfer.backbone = t.backbone();
    model.transfer.mode = t.mode();
    model.transfer.blocks = static_cast<int>(t.blocks());
    model.transfer.memory_budget_kb = t.memory_budget_kb();
    model.transfer.batch_size = static_cast<int>(t.batch_size());
    model.transfer.momentum = t.momentum();
  }
  PartitionSpec spec;
  spec.kind = ack.partition();
  spec.alpha = ack.dirichlet_alpha();
  spec.shards_per_node = ack.shards_per_node();
  spec.num_nodes = ack.num_nodes();
  spec.seed = ack.seed();
  auto parts = PartitionAll(setup.data.labels, setup.data.num_classes, spec);
  if (!parts.ok()) return parts.status();
  setup.parts = std::move(parts.value());
  if (ack.has_split()) return setup;  // split learning: the node's encoder is built by RunSplitNode
  auto learner = Learner::Create(model, ack.seed());
  if (!learner.ok()) return learner.status();
  setup.learner = std::move(learner.value());
  return setup;
}

Status LocalFit(Learner& learner, const Dataset& data, const std::vector<uint32_t>& indices,
                const wire::FitIns& ins, const std::function<bool(float)>& on_progress, wire::FitRes* res,
                ErrorFeedbackQuantiser* vq) {
  VqCodebook q;
  if (ins.has_vq()) {
    q.size = ins.vq().size();
    q.block_length = ins.vq().block_length();
    q.centroids.assign(ins.vq().centroids().begin(), ins.vq().centroids().end());
    EDGEBED_RETURN_IF_ERROR(q.Validate("fit_ins.vq"));
    if (!vq) return Status::InvalidArgument("fit_ins.vq: this node keeps no quantiser state");
  }
  if (!std::isfinite(ins.corrupt_factor())) return Status::InvalidArgument("fit_ins.corrupt_factor must be finite");
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
  if (ins.corrupt_factor() != 0.0f)
    for (float& v : update.flat) v *= ins.corrupt_factor();
  res->set_round(ins.round());
  if (ins.has_vq()) {
    std::vector<uint32_t> idx(NumBlocks(update.flat.size(), q.block_length));
    vq->Quantise(q, update.flat.data(), update.flat.size(), ins.vq().error_feedback(), idx.data());
    res->mutable_vq_indices()->Assign(idx.begin(), idx.end());
  } else {
    wire::ToTensors(update, res->mutable_update());
  }
  res->set_num_samples(ts.samples);
  res->set_train_loss(static_cast<float>(ts.mean_loss));
  res->set_train_time_s(ts.seconds);
  res->set_peak_train_bytes(static_cast<uint64_t>(ts.peak_train_bytes));
  res->set_kept_for_backward_bytes(static_cast<uint64_t>(ts.kept_for_backward_bytes));
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
