// Restoring a libtorch optimiser from a checkpoint (private to the libtorch translation units of
// splitnets/ and gnn/). zero_grad leaves every parameter that ever had a gradient with a zero one,
// and SGD with momentum and Adam keep moving such a parameter; after Optimizer::load a parameter
// with restored state but no gradient would stand still where the original moves. This gives it
// back its zero gradient.
#pragma once
#include <torch/torch.h>

namespace edgebed {

inline void RestoreZeroGradients(torch::optim::Optimizer& opt) {
  for (auto& group : opt.param_groups())
    for (auto& p : group.params())
      if (!p.grad().defined() && opt.state().count(c10::guts::to_string(p.unsafeGetTensorImpl())))
        p.mutable_grad() = torch::zeros_like(p);
}

}  // namespace edgebed
