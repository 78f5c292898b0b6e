// Learners from TorchScript modules saved by PyTorch 1.13 (torch.jit.save): every parameter that
// requires grad trains and is exchanged by name, float buffers (batch-norm statistics) go with it,
// the loss is cross-entropy, mse or the module's own loss(output, target) method; FLOPs are counted
// from the shapes a forward pass has.
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/script.h>

#include <cstdlib>
#include <map>
#include <sstream>

#include "splitnets/learner_impl.h"

namespace edgebed {
namespace {


// FLOPs of one forward pass of `module` on `x` (multiply-add = 2): the module frozen in evaluation
// mode and inlined, its graph made to return the operands and result of every convolution, linear
// layer and matrix product, run once, and each counted from the shapes it actually had. Other layers
// (recurrent cells, attention kernels) count nothing: give model.train_flops for those.
// (libtorch 1.13's profiler loses conv2d's arguments in TorchScript graphs, so it cannot count them.)
int64_t MeasuredForwardFlops(const torch::jit::Module& module, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  torch::jit::GraphOptimizerEnabledGuard optimise(true);  // freezing inlines the submodules' methods only then
  auto copy = module.clone();
  copy.eval();
  auto frozen = torch::jit::freeze(copy);
  auto graph = frozen.get_method("forward").graph()->copy();
  torch::jit::Inline(*graph);
  // Which operand holds the reduced dimension K: the weight for convolutions (K = Cin/groups x
  // kernel) and linear layers, the left matrix for products.
  static const std::map<std::string, int> kOperand = {
      {"aten::conv1d", 1}, {"aten::conv2d", 1}, {"aten::conv3d", 1}, {"aten::_convolution", 1}, {"aten::convolution", 1},
      {"aten::linear", 1}, {"aten::matmul", 0},  {"aten::mm", 0},     {"aten::bmm", 0},           {"aten::addmm", 1},
      {"aten::baddbmm", 1}};
  std::vector<std::pair<torch::jit::Node*, int>> ops;
  for (auto* n : graph->nodes()) {
    auto it = kOperand.find(n->kind().toQualString());
    if (it != kOperand.end()) ops.push_back({n, it->second});
  }
  if (ops.empty()) return 0;
  std::vector<torch::jit::Value*> values;
  for (auto& [n, k] : ops) {
    values.push_back(n->input(static_cast<size_t>(k)));
    values.push_back(n->output());
  }
  while (!graph->outputs().empty()) graph->eraseOutput(0);
  auto* tuple = graph->createTuple(values);
  tuple->insertBefore(graph->return_node());
  graph->registerOutput(tuple->output());
  torch::jit::GraphFunction fn("edgebed_flops", graph, nullptr);
  torch::jit::Stack stack{frozen._ivalue(), x};
  fn.run(stack);
  const auto seen = stack.at(0).toTupleRef().elements();
  int64_t flops = 0;
  for (size_t i = 0; i < ops.size(); ++i) {
    const auto operand = seen[2 * i].toTensor(), out = seen[2 * i + 1].toTensor();
    const bool conv = std::string(ops[i].first->kind().toQualString()).find("conv") != std::string::npos;
    const int64_t k = conv ? operand.numel() / std::max<int64_t>(1, operand.size(0)) : operand.size(-1);
    flops += 2 * out.numel() * k;
  }
  return flops;
}

}  // namespace

Result<std::unique_ptr<Learner>> CreateTorchScriptLearner(const ModelSpec& spec) {
  const TorchScriptConfig& c = spec.torchscript;
  const std::string file = c.path.empty() ? "the server's module" : c.path;
  if (c.path.empty() && !c.bytes) return Status::InvalidArgument("model.name = \"torchscript\" needs model.path (a torch.jit.save file)");
  // The graph executor's profiling and differentiable-graph passes cost training about 13% here
  // (edgebed bench train); run the graph op by op with eager autograd, as the built-in networks do.
  if (std::getenv("EDGEBED_JIT_OPTIMIZE") == nullptr) torch::jit::setGraphExecutorOptimize(false);
  auto module = std::make_shared<torch::jit::Module>();
  try {
    if (c.bytes) {
      std::istringstream in(*c.bytes);
      *module = torch::jit::load(in);
    } else {
      *module = torch::jit::load(c.path);
    }
  } catch (const std::exception& e) {
    return Status::InvalidArgument("model.path = '" + c.path + "': not a TorchScript module PyTorch 1.13 can load: " + TorchMessage(e));
  }
  if (!module->find_method("forward")) return Status::InvalidArgument("model.path = '" + file + "': the module has no forward method");
  const bool has_loss = module->find_method("loss").has_value();
  std::string loss = c.loss;
  if (loss == "module" && !has_loss)
    return Status::InvalidArgument("model.loss = \"module\" but " + file + " exports no loss(output, target) method (@torch.jit.export)");
  if (loss == "auto") loss = has_loss ? "module" : spec.num_classes == 0 ? "mse" : "cross_entropy";

  auto impl = std::make_unique<Learner::Impl>();
  impl->name = "torchscript";
  impl->source = file;
  impl->exact_outputs = true;
  impl->forward = [module](const torch::Tensor& x) {
    auto out = module->forward({x});
    if (!out.isTensor()) throw std::runtime_error("forward returned a " + out.tagKind() + ", not one tensor");
    return out.toTensor();
  };
  impl->set_mode = [module](bool training) { module->train(training); };
  if (loss == "module") {
    impl->loss = [module](const torch::Tensor& out, const torch::Tensor& y) {
      auto l = module->get_method("loss")({out, y});
      if (!l.isTensor()) throw std::runtime_error("loss returned a " + l.tagKind() + ", not a tensor");
      return l.toTensor();
    };
  } else if (loss == "mse") {
    impl->loss = [](const torch::Tensor& out, const torch::Tensor& y) { return torch::mse_loss(out, y); };
  } else if (loss != "cross_entropy") {
    return Status::InvalidArgument("model.loss = '" + c.loss + "' is unknown; allowed: auto, cross_entropy, mse, module");
  }
  impl->save = [module](const std::string& path) {
    return SaveModelFile(path, [&module](const std::string& tmp) { module->save(tmp); });
  };
  impl->measure_forward_flops = [module](const torch::Tensor& x) { return MeasuredForwardFlops(*module, x); };
  if (c.train_flops > 0) {
    impl->flops_given = true;
    impl->train_flops = static_cast<int64_t>(c.train_flops);
    impl->forward_flops = impl->train_flops / 3;
  }
  std::vector<std::pair<std::string, torch::Tensor>> params, buffers;
  for (const auto& p : module->named_parameters(/*recurse=*/true)) {
    if (p.value.scalar_type() != torch::kFloat)
      return Status::InvalidArgument(file + ": parameter " + p.name + " is " + std::string(c10::toString(p.value.scalar_type())) +
                                     "; only float32 parameters are trained and sent (call .float() before saving)");
    if (p.value.requires_grad()) params.emplace_back(p.name, p.value);
  }
  for (const auto& b : module->named_buffers(/*recurse=*/true)) buffers.emplace_back(b.name, b.value);
  if (params.empty()) return Status::InvalidArgument(file + ": no parameter requires grad; nothing would train");
  FinishImpl(impl.get(), params, buffers);
  return Learner::Wrap(std::move(impl));
}

}  // namespace edgebed
