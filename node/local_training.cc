#include "node/local_training.h"

#include <cmath>
#include <random>

#include "codecs/rng.h"
#include "codecs/wire.h"
#include "splitnets/data_files.h"
#include "splitnets/partition_file.h"
#include "splitnets/transfer.h"

namespace edgebed {

namespace {

DataSpec DataSpecOf(const wire::JoinAck& ack, const std::string& data_dir) {
  const auto& f = ack.data();
  DataSpec spec;
  spec.format = f.format().empty() ? "fashion-mnist" : f.format();
  spec.dir = data_dir.empty() ? f.dir() : data_dir;
  spec.train = f.train();
  spec.train_labels = f.train_labels();
  spec.test = f.test();
  spec.held_out = f.held_out();
  spec.mean.assign(f.mean().begin(), f.mean().end());
  spec.std.assign(f.std().begin(), f.std().end());
  spec.train_limit = ack.train_limit();
  spec.classes.assign(ack.classes().begin(), ack.classes().end());
  spec.seed = ack.seed();
  return spec;
}

PartitionSpec PartitionSpecOf(const wire::JoinAck& ack) {
  PartitionSpec pspec;
  pspec.kind = ack.partition();
  pspec.alpha = ack.dirichlet_alpha();
  pspec.shards_per_node = ack.shards_per_node();
  pspec.num_nodes = ack.num_nodes();
  pspec.seed = ack.seed();
  if (ack.min_samples() > 0) pspec.min_samples = ack.min_samples();
  pspec.samples_per_node = ack.samples_per_node();
  return pspec;
}

Status ModelOf(const wire::JoinAck& ack, int num_classes, ModelSpec* model) {
  model->name = ack.model();
  model->num_classes = num_classes;
  if (ack.has_torchscript()) {
    model->torchscript.bytes = std::make_shared<const std::string>(ack.torchscript().module());
    model->torchscript.loss = ack.torchscript().loss();
    model->torchscript.train_flops = ack.torchscript().train_flops();
  }
  if (ack.has_transfer()) {
    const auto& t = ack.transfer();
    auto crc = FileCrc32(t.backbone());
    if (!crc.ok()) return Status::NotFound("transfer.backbone: " + crc.status().message() + " (every node needs the server's backbone file)");
    if (crc.value() != t.backbone_crc32())
      return Status::InvalidArgument("transfer.backbone " + t.backbone() + " is not the server's file (crc32 " +
                                     std::to_string(crc.value()) + ", the server's " + std::to_string(t.backbone_crc32()) + ")");
    model->transfer.backbone = t.backbone();
    model->transfer.mode = t.mode();
    model->transfer.blocks = static_cast<int>(t.blocks());
    model->transfer.memory_budget_kb = t.memory_budget_kb();
    model->transfer.batch_size = static_cast<int>(t.batch_size());
    model->transfer.momentum = t.momentum();
  }
  return Status::Ok();
}

// The hosted nodes' rows: from the node's own partition file, or read from the data files.
Status LoadRows(const wire::JoinAck& ack, const NodeData& where, uint32_t first, uint32_t count, NodeSetup* setup,
                int* num_classes) {
  const DataSpec spec = DataSpecOf(ack, where.data_dir);
  const PartitionSpec pspec = PartitionSpecOf(ack);
  if (!where.partition_file.empty()) {
    if (count != 1) return Status::InvalidArgument("--partition serves one node; a node host reads the data files");
    PartitionCut cut{spec, pspec, first, ack.data().train_rows()};
    EDGEBED_ASSIGN_OR_RETURN(setup->data, ReadPartitionFile(where.partition_file, cut));
    if (first >= pspec.num_nodes)
      return Status::InvalidArgument("node index " + std::to_string(first) + " is outside the partition of " +
                                     std::to_string(pspec.num_nodes) + " nodes");
    setup->parts.resize(pspec.num_nodes);
    for (uint32_t i = 0; i < setup->data.size(); ++i) setup->parts[first].push_back(i);
    *num_classes = setup->data.num_classes;
    return Status::Ok();
  }
  EDGEBED_ASSIGN_OR_RETURN(DataPlan plan, PlanData(spec));
  if (ack.data().train_rows() != 0 && plan.train_rows.size() != ack.data().train_rows())
    return Status::InvalidArgument("data: this node's files give " + std::to_string(plan.train_rows.size()) +
                                   " training rows, the server's " + std::to_string(ack.data().train_rows()) +
                                   "; every node needs the server's data files (or its own --partition file)");
  *num_classes = plan.train.num_classes;
  EDGEBED_ASSIGN_OR_RETURN(auto parts, PartitionPlan(plan, pspec));
  if (count == 0 || first >= parts.size() || count > parts.size() - first)
    return Status::InvalidArgument("node indices " + std::to_string(first) + ".." + std::to_string(first + count - 1) +
                                   " are outside the partition of " + std::to_string(parts.size()) + " nodes");
  // Only the hosted nodes' rows are read, each once (nodes share rows under partition = sample):
  // their positions, then each node's share renumbered into them.
  std::vector<uint32_t> rows;
  std::vector<int64_t> local(plan.train_rows.size(), -1);  // a training row's position in `rows`
  setup->parts.resize(parts.size());
  for (uint32_t k = first; k < first + count; ++k) {
    for (uint32_t p : parts[k]) {
      if (p >= local.size())
        return Status::InvalidArgument("partition row " + std::to_string(p) + " is outside the " +
                                       std::to_string(local.size()) + " training rows");
      if (local[p] < 0) {
        local[p] = static_cast<int64_t>(rows.size());
        rows.push_back(p);
      }
      setup->parts[k].push_back(static_cast<uint32_t>(local[p]));
    }
  }
  EDGEBED_ASSIGN_OR_RETURN(setup->data, LoadTrainRows(plan, rows));
  return Status::Ok();
}

}  // namespace

Result<NodeSetup> PrepareFromJoinAck(const wire::JoinAck& ack, const NodeData& where, uint32_t first, uint32_t count) {
  NodeSetup setup;
  InstallCountingAllocator();  // fit_res reports measured peak training memory
  int num_classes = 0;
  EDGEBED_RETURN_IF_ERROR(LoadRows(ack, where, first, count, &setup, &num_classes));
  ModelSpec model;
  EDGEBED_RETURN_IF_ERROR(ModelOf(ack, num_classes, &model));
  if (ack.has_split()) return setup;  // split learning: the node's encoder is built by RunSplitNode
  EDGEBED_ASSIGN_OR_RETURN(setup.learner, Learner::Create(model, ack.seed()));
  if (setup.data.size() > 0) EDGEBED_RETURN_IF_ERROR(setup.learner->Check(setup.data));
  return setup;
}

Status LocalFit(Learner& learner, const Dataset& data, const std::vector<uint32_t>& indices,
                const wire::FitIns& ins, const std::function<bool(float)>& on_progress, wire::FitRes* res,
                wire::Attachments* att, ErrorFeedbackQuantiser* vq, std::vector<float>* control) {
  VqCodebook q;
  if (ins.has_vq()) {
    q.size = ins.vq().size();
    q.block_length = ins.vq().block_length();
    q.centroids.assign(ins.vq().centroids().begin(), ins.vq().centroids().end());
    EDGEBED_RETURN_IF_ERROR(q.Validate("fit_ins.vq"));
    if (!vq) return Status::InvalidArgument("fit_ins.vq: this node keeps no quantiser state");
  }
  if (!std::isfinite(ins.corrupt_factor())) return Status::InvalidArgument("fit_ins.corrupt_factor must be finite");
  if (!(ins.corrupt_noise_std() >= 0.0f && std::isfinite(ins.corrupt_noise_std())))
    return Status::InvalidArgument("fit_ins.corrupt_noise_std must be finite and >= 0");
  if (ins.params_as_before())
    return Status::InvalidArgument("fit_ins.params_as_before is for node hosts; this node needs the model in fit_ins.params");
  ParamSet global;
  EDGEBED_RETURN_IF_ERROR(wire::FromTensors(ins.params(), "fit_ins.params", &learner.specs(), &global));
  EDGEBED_RETURN_IF_ERROR(learner.SetParams(global));
  TrainOptions topt;
  topt.epochs = static_cast<int>(ins.local_epochs());
  topt.batch_size = static_cast<int>(ins.batch_size());
  topt.learning_rate = ins.learning_rate();
  topt.momentum = ins.momentum();
  if (!ins.optimizer().empty()) topt.optimizer = ins.optimizer();
  topt.weight_decay = ins.weight_decay();
  if (!std::isfinite(topt.weight_decay) || topt.weight_decay < 0.0f)
    return Status::InvalidArgument("fit_ins.weight_decay must be finite and >= 0");
  topt.proximal_mu = ins.proximal_mu();
  if (!(topt.proximal_mu >= 0.0f && topt.proximal_mu <= 1e6f))
    return Status::InvalidArgument("fit_ins.proximal_mu must be in [0, 1e6]");
  topt.seed = ins.seed();
  topt.on_progress = on_progress;
  ParamSet c;  // SCAFFOLD: the server's control variate
  std::vector<float> correction;
  if (ins.control_size() > 0) {
    if (!control) return Status::InvalidArgument("fit_ins.control: this node keeps no control variate");
    EDGEBED_RETURN_IF_ERROR(wire::FromTensors(ins.control(), "fit_ins.control", &learner.specs(), &c));
    if (control->size() != c.flat.size()) control->assign(c.flat.size(), 0.0f);  // c_i starts at 0
    correction.resize(c.flat.size());
    for (size_t i = 0; i < correction.size(); ++i) correction[i] = c.flat[i] - (*control)[i];
    topt.gradient_correction = &correction;
    if (!(topt.learning_rate > 0.0f)) return Status::InvalidArgument("fit_ins.learning_rate must be > 0 with fit_ins.control");
  }
  EDGEBED_ASSIGN_OR_RETURN(const TrainStats ts, learner.Train(data, indices, topt));
  ParamSet update = learner.GetParams();
  for (size_t i = 0; i < update.flat.size(); ++i) update.flat[i] -= global.flat[i];
  if (!c.flat.empty()) {  // option II: c_i+ = c_i - c + (x - y) / (K lr), on the trained values only
    ParamSet delta = ParamSet::Zeros(c.specs);
    const double k_lr = static_cast<double>(std::max<size_t>(ts.steps, 1)) * topt.learning_rate;
    for (size_t i = 0; i < learner.TrainedValues(); ++i) {
      const float next = static_cast<float>((*control)[i] - c.flat[i] - update.flat[i] / k_lr);
      delta.flat[i] = next - (*control)[i];
      (*control)[i] = next;
    }
    wire::ToTensors(delta, res->mutable_control_delta());
  }
  if (ins.corrupt_factor() != 0.0f)
    for (float& v : update.flat) v *= ins.corrupt_factor();
  if (ins.corrupt_noise_std() > 0.0f) {  // a Byzantine node that sends noise (seeded by the round's stream)
    Rng rng = MakeRng(ins.seed(), "corrupt-noise");
    std::normal_distribution<float> noise(0.0f, ins.corrupt_noise_std());
    for (float& v : update.flat) v = noise(rng);
  }
  res->set_round(ins.round());
  if (ins.has_vq()) {
    std::vector<uint32_t> idx(NumBlocks(update.flat.size(), q.block_length));
    vq->Quantise(q, update.flat.data(), update.flat.size(), ins.vq().error_feedback(), idx.data());
    res->mutable_vq_indices()->Assign(idx.begin(), idx.end());
  } else if (att) {
    wire::AttachTensors(update.specs, std::make_shared<const std::vector<float>>(std::move(update.flat)),
                        res->mutable_update(), att);
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

wire::ErrorCode FailureCode(const Status& st) {
  return st.code() == Status::Code::kFailed ? wire::TRAINING_FAILED : wire::BAD_TENSOR;
}

Status LocalEvaluate(Learner& learner, const Dataset& data, const std::vector<uint32_t>& indices,
                     const wire::EvaluateIns& ins, wire::EvaluateRes* res) {
  ParamSet p;
  EDGEBED_RETURN_IF_ERROR(wire::FromTensors(ins.params(), "evaluate_ins.params", &learner.specs(), &p));
  EDGEBED_RETURN_IF_ERROR(learner.SetParams(p));
  EDGEBED_ASSIGN_OR_RETURN(const EvalStats es, learner.Evaluate(data, &indices));
  res->set_round(ins.round());
  res->set_num_samples(es.samples);
  res->set_loss(static_cast<float>(es.loss));
  res->set_accuracy(static_cast<float>(es.accuracy));
  return Status::Ok();
}

}  // namespace edgebed
