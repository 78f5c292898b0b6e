// MobileTL's transfer learner on libtorch: the IRB network (frozen features in chunks, the trainable
// blocks under the chosen rule, the head) behind Learner (transfer.h).
#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <sstream>

#include "codecs/rng.h"
#include "splitnets/learner_impl.h"
#include "splitnets/mobiletl_ops.h"
#include "splitnets/transfer.h"

namespace edgebed {

// ---- the IRB learner ------------------------------------------------------------------------------
namespace {

using mobiletl::Features;

struct IrbNetImpl : torch::nn::Module {
  IrbNetImpl(mobiletl::Activation act, int classes) {
    features = register_module("features", Features(act));
    head = register_module("head", torch::nn::Linear(IrbNetBlocks().back().out, classes));
  }
  Features features{nullptr};
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(IrbNet);

constexpr int64_t kFrozenChunk = 8;  // samples per pass through the frozen blocks

// Global average pooling as a sum and a scale: libtorch's mean keeps its whole input for backward.
torch::Tensor Pool(const torch::Tensor& h) { return h.sum({2, 3}) * (1.0 / static_cast<double>(h.size(2) * h.size(3))); }

int64_t BlockFlops(const IrbShape& s) {
  const int64_t in2 = int64_t{s.in_hw} * s.in_hw, out2 = int64_t{s.out_hw()} * s.out_hw();
  return 2 * (in2 * s.in * s.hidden + out2 * s.hidden * 9 + out2 * s.hidden * s.out);
}

}  // namespace

Result<std::unique_ptr<Learner>> CreateIrbLearner(const ModelSpec& spec, uint64_t seed) {
  const auto act = spec.name == "irbnet_hs" ? mobiletl::kHardSwish : mobiletl::kRelu6;
  const auto& shapes = IrbNetBlocks();
  const int nblocks = static_cast<int>(shapes.size());
  if (spec.num_classes < 2 || spec.num_classes > 10)
    return Status::InvalidArgument("model " + spec.name + ": classes must number 2..10, got " +
                                   std::to_string(spec.num_classes));
  int k = nblocks;  // trained top blocks: all of them without transfer
  TrainRule rule = TrainRule::kStandard;
  if (spec.is_transfer()) {
    const auto& t = spec.transfer;
    if (t.mode != "mobiletl" && t.mode != "full" && t.mode != "linear")
      return Status::InvalidArgument("transfer.mode = '" + t.mode + "' is unknown; known: mobiletl, full, linear");
    if (t.mode != "linear" && (t.blocks < 1 || t.blocks > nblocks))
      return Status::InvalidArgument("transfer.blocks = " + std::to_string(t.blocks) + " is out of range 1.." +
                                     std::to_string(nblocks) + " (irbnet has " + std::to_string(nblocks) +
                                     " IRBs)");
    auto fit = BlocksWithinBudget(t, spec.num_classes);
    if (!fit.ok()) return fit.status();
    k = fit.value();
    if (t.mode == "mobiletl") rule = TrainRule::kMobileTl;
  }
  torch::manual_seed(DeriveSeed(seed, "model-init"));
  IrbNet net(act, spec.num_classes);
  if (spec.is_transfer()) EDGEBED_RETURN_IF_ERROR(mobiletl::LoadBackbone(net->features, spec.transfer.backbone));

  auto impl = std::make_unique<Learner::Impl>();
  impl->name = spec.name;
  impl->root = net.ptr();
  impl->trainable_blocks = spec.is_transfer() ? k : -1;
  const int first_top = nblocks - k;
  auto& blocks = net->features->blocks;
  for (int i = first_top; i < nblocks; ++i) blocks[i]->SetRule(rule);

  std::vector<std::pair<std::string, torch::Tensor>> trainable, buffers;
  if (!spec.is_transfer()) {
    for (const auto& kv : net->named_parameters()) trainable.emplace_back(kv.key(), kv.value());
    for (const auto& kv : net->named_buffers()) buffers.emplace_back(kv.key(), kv.value());
  } else {
    for (auto& p : net->features->parameters()) p.set_requires_grad(false);
    for (int i = first_top; i < nblocks; ++i) {
      const std::string pre = "features.blocks." + std::to_string(i) + ".";
      for (const auto& kv : blocks[i]->named_parameters()) {
        const bool frozen_scale = rule == TrainRule::kMobileTl &&
                                  (kv.key() == "bn1.weight" || kv.key() == "bn2.weight");
        if (frozen_scale) continue;
        kv.value().set_requires_grad(true);
        trainable.emplace_back(pre + kv.key(), kv.value());
      }
      for (const auto& kv : blocks[i]->named_buffers()) {
        const bool frozen_stats = rule == TrainRule::kMobileTl && kv.key().rfind("bn3.", 0) != 0;
        if (!frozen_stats) buffers.emplace_back(pre + kv.key(), kv.value());
      }
    }
    for (const auto& kv : net->head->named_parameters()) trainable.emplace_back("head." + kv.key(), kv.value());
  }

  // FLOPs: forward everywhere; backward (input and weight gradients, 2x forward) where layers train,
  // less the input gradient of the lowest trained layer.
  const int64_t stem = 2 * int64_t{28} * 28 * 16 * 9, head = 2 * int64_t{shapes.back().out} * spec.num_classes;
  int64_t fwd = stem + head, trained = head, lowest = head;
  for (int i = 0; i < nblocks; ++i) fwd += BlockFlops(shapes[i]);
  for (int i = first_top; i < nblocks; ++i) trained += BlockFlops(shapes[i]);
  if (!spec.is_transfer()) trained += stem, lowest = stem;
  else if (k > 0) lowest = 2 * int64_t{shapes[first_top].in_hw} * shapes[first_top].in_hw * shapes[first_top].in *
                           shapes[first_top].hidden;
  impl->forward_flops = fwd;
  impl->train_flops = fwd + 2 * trained - lowest;

  if (spec.is_transfer()) {
    impl->forward = [net, first_top, nblocks](const torch::Tensor& x) mutable {
      torch::Tensor h;
      {
        // No graph below the trained blocks, and a few samples at a time: frozen BNs use running
        // statistics, so the result is the whole batch's, while the expanded activations of the big
        // bottom blocks never exist for all of it at once.
        torch::NoGradGuard frozen;
        std::vector<torch::Tensor> parts;
        for (const auto& chunk : x.split(kFrozenChunk)) {
          auto c = net->features->stem->ForwardFrozen(chunk);
          for (int i = 0; i < first_top; ++i) c = net->features->blocks[i]->ForwardFrozen(c);
          parts.push_back(c);
        }
        h = parts.size() == 1 ? parts[0] : torch::cat(parts);
      }
      for (int i = first_top; i < nblocks; ++i) h = net->features->blocks[i]->forward(h);
      return net->head->forward(Pool(h));
    };
    impl->set_mode = [net, first_top, nblocks, rule](bool training) mutable {
      net->eval();  // frozen layers use their running statistics
      if (!training) return;
      net->head->train();
      for (int i = first_top; i < nblocks; ++i) {
        net->features->blocks[i]->train();
        if (rule == TrainRule::kMobileTl) {
          net->features->blocks[i]->bn1->eval();
          net->features->blocks[i]->bn2->eval();
        }
      }
    };
  } else {
    impl->forward = [net](const torch::Tensor& x) mutable {
      return net->head->forward(Pool(net->features->forward(x)));
    };
  }
  impl->save_backbone = [net](const std::string& path) -> Status {
    try {
      torch::save(net->features, path);
    } catch (const std::exception& e) {
      return Status::IoError("cannot write backbone to " + path + ": " + e.what());
    }
    return Status::Ok();
  };
  FinishImpl(impl.get(), trainable, buffers);
  return Learner::Wrap(std::move(impl));
}

}  // namespace edgebed
