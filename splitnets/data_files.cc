#include "splitnets/data_files.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <numeric>

#include "codecs/rng.h"
#include "splitnets/data_sources.h"

namespace edgebed {
namespace {

// Keeps positions `keep` of a view (labels or targets, rows and client ids alike).
void Keep(const std::vector<size_t>& keep, Dataset* d, std::vector<uint64_t>* rows, std::vector<int64_t>* clients) {
  Dataset out = d->EmptyLike();  // a plan holds no samples: only labels or targets move
  std::vector<uint64_t> r;
  std::vector<int64_t> c;
  for (size_t i : keep) {
    if (d->regression())
      out.targets.insert(out.targets.end(), d->targets.begin() + static_cast<std::ptrdiff_t>(i * d->target_dim),
                         d->targets.begin() + static_cast<std::ptrdiff_t>((i + 1) * d->target_dim));
    else
      out.labels.push_back(d->labels[i]);
    r.push_back((*rows)[i]);
    if (!clients->empty()) c.push_back((*clients)[i]);
  }
  *d = std::move(out);
  *rows = std::move(r);
  *clients = std::move(c);
}

Status Normalisation(const DataSpec& spec, Dataset* d) {
  if (spec.mean.empty() && spec.std.empty()) {
    if (spec.format == "cifar10") {
      d->mean = {0.4914f, 0.4822f, 0.4465f};
      d->std = {0.2470f, 0.2435f, 0.2616f};
    } else if (spec.format != "fashion-mnist") {
      d->mean = {0.0f};
      d->std = {1.0f};
    }  // fashion-mnist: the Dataset default
    return Status::Ok();
  }
  const size_t channels = static_cast<size_t>(d->sample_shape()[0]);
  if (spec.mean.size() != spec.std.size() || (spec.mean.size() != 1 && spec.mean.size() != channels))
    return Status::InvalidArgument("data.mean and data.std hold " + std::to_string(spec.mean.size()) + " and " +
                                   std::to_string(spec.std.size()) + " values; allowed: both 1 or both " +
                                   std::to_string(channels) + " (one per channel, the first axis of a sample)");
  d->mean.assign(spec.mean.begin(), spec.mean.end());
  d->std.assign(spec.std.begin(), spec.std.end());
  for (float s : d->std)
    if (!(s > 0.0f)) return Status::InvalidArgument("data.std values must be > 0");
  return Status::Ok();
}

// Reads the samples of view positions `positions` into `out` (labels/targets from the plan's view).
Status LoadView(const DataSpec& spec, bool train, const Dataset& view, const std::vector<uint64_t>& view_rows,
                const std::vector<uint32_t>& positions, Dataset* out) {
  // A held-out test set is rows of the training file.
  const bool test_file = spec.format == "fashion-mnist" || spec.format == "cifar10" || !spec.test.empty();
  EDGEBED_ASSIGN_OR_RETURN(auto source, OpenSource(spec, train || !test_file));
  *out = view.EmptyLike();
  std::vector<uint64_t> rows;
  bool ascending = true;
  for (size_t k = 0; k < positions.size(); ++k) {
    if (positions[k] >= view_rows.size())
      return Status::InvalidArgument("data: position " + std::to_string(positions[k]) + " is outside the " +
                                     std::to_string(view_rows.size()) + " rows");
    rows.push_back(view_rows[positions[k]]);
    if (k > 0 && rows[k] <= rows[k - 1]) ascending = false;
  }
  if (ascending) {
    EDGEBED_RETURN_IF_ERROR(source->ReadSamples(rows, out));
  } else {  // read each file row once, ascending, then put them in the order asked
    std::vector<uint64_t> sorted = rows;
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    Dataset tmp = view.EmptyLike();
    EDGEBED_RETURN_IF_ERROR(source->ReadSamples(sorted, &tmp));
    tmp.labels.assign(sorted.size(), 0);
    tmp.targets.assign(sorted.size() * tmp.target_dim, 0.0f);
    for (uint64_t r : rows) out->Append(tmp, static_cast<size_t>(std::lower_bound(sorted.begin(), sorted.end(), r) - sorted.begin()));
    out->labels.clear();
    out->targets.clear();
  }
  for (uint32_t p : positions) {  // labels and targets as the plan has them (relabelled)
    if (view.regression())
      out->targets.insert(out->targets.end(), view.targets.begin() + p * view.target_dim,
                          view.targets.begin() + (p + 1) * view.target_dim);
    else
      out->labels.push_back(view.labels[p]);
  }
  return Status::Ok();
}

}  // namespace

Result<DataPlan> PlanData(const DataSpec& spec) {
  DataPlan plan;
  plan.spec = spec;
  if (!(spec.held_out >= 0.0 && spec.held_out <= 0.9))
    return Status::InvalidArgument("data.held_out = " + std::to_string(spec.held_out) + ": allowed 0..0.9");
  EDGEBED_ASSIGN_OR_RETURN(auto train_src, OpenSource(spec, true));
  std::vector<int64_t> clients;
  EDGEBED_RETURN_IF_ERROR(train_src->ReadTargets(&plan.train, &clients));
  const std::string train_name = spec.format == "npz" || spec.format == "idx" ? spec.train : spec.dir;
  if (!plan.train.regression()) {
    const int32_t top = plan.train.labels.empty() ? 0 : *std::max_element(plan.train.labels.begin(), plan.train.labels.end());
    plan.train.num_classes = spec.format == "fashion-mnist" || spec.format == "cifar10" ? 10 : std::max(2, top + 1);
    if (top >= plan.train.num_classes)
      return Status::Corruption(train_name + ": label " + std::to_string(top) + " is outside 0.." + std::to_string(plan.train.num_classes - 1));
  }
  plan.train_rows.resize(train_src->rows());
  std::iota(plan.train_rows.begin(), plan.train_rows.end(), uint64_t{0});

  EDGEBED_ASSIGN_OR_RETURN(auto test_src, OpenSource(spec, false));
  std::vector<int64_t> test_clients;
  if (test_src) {
    if (spec.held_out > 0.0) return Status::InvalidArgument("data.held_out = " + std::to_string(spec.held_out) + " with a test file: give one or the other");
    EDGEBED_RETURN_IF_ERROR(test_src->ReadTargets(&plan.test, &test_clients));
    if (plan.test.sample_shape() != plan.train.sample_shape() || plan.test.type != plan.train.type ||
        plan.test.target_dim != plan.train.target_dim)
      return Status::InvalidArgument("data.test: its samples or targets differ in shape or type from data.train's");
    plan.test.num_classes = plan.train.num_classes;
    for (int32_t y : plan.test.labels)
      if (y >= plan.train.num_classes)
        return Status::InvalidArgument("data.test: label " + std::to_string(y) + " is outside the training labels 0.." +
                                       std::to_string(plan.train.num_classes - 1));
    plan.test_rows.resize(test_src->rows());
    std::iota(plan.test_rows.begin(), plan.test_rows.end(), uint64_t{0});
  } else {
    if (!(spec.held_out > 0.0))
      return Status::InvalidArgument("data.test is empty and data.held_out = 0: give a test file or the share of data.train to hold out");
    std::vector<size_t> order(plan.train_rows.size());
    std::iota(order.begin(), order.end(), size_t{0});
    Rng rng = MakeRng(spec.seed, "held-out");
    std::shuffle(order.begin(), order.end(), rng);
    const size_t n_test = static_cast<size_t>(spec.held_out * static_cast<double>(order.size()) + 0.5);
    if (n_test == 0 || n_test == order.size())
      return Status::InvalidArgument("data.held_out = " + std::to_string(spec.held_out) + " of " + std::to_string(order.size()) +
                                     " rows leaves an empty training or test set");
    std::vector<size_t> test_pos(order.end() - static_cast<std::ptrdiff_t>(n_test), order.end());
    std::vector<size_t> train_pos(order.begin(), order.end() - static_cast<std::ptrdiff_t>(n_test));
    std::sort(test_pos.begin(), test_pos.end());
    std::sort(train_pos.begin(), train_pos.end());
    plan.test = plan.train;
    plan.test_rows = plan.train_rows;
    test_clients = clients;
    Keep(test_pos, &plan.test, &plan.test_rows, &test_clients);
    Keep(train_pos, &plan.train, &plan.train_rows, &clients);
  }
  auto limit = [](uint32_t n, Dataset* d, std::vector<uint64_t>* rows, std::vector<int64_t>* c) {
    if (n == 0 || n >= rows->size()) return;
    std::vector<size_t> first(n);
    std::iota(first.begin(), first.end(), size_t{0});
    Keep(first, d, rows, c);
  };
  limit(spec.train_limit, &plan.train, &plan.train_rows, &clients);
  limit(spec.test_limit, &plan.test, &plan.test_rows, &test_clients);
  if (!spec.classes.empty()) {
    if (plan.train.regression()) return Status::InvalidArgument("data.classes needs class labels; data.train's y holds float targets");
    std::vector<int> position(static_cast<size_t>(plan.train.num_classes), -1);
    for (size_t k = 0; k < spec.classes.size(); ++k) {
      const int c = spec.classes[k];
      if (c < 0 || c >= plan.train.num_classes)
        return Status::InvalidArgument("data.classes: class " + std::to_string(c) + " is outside 0.." + std::to_string(plan.train.num_classes - 1));
      position[static_cast<size_t>(c)] = static_cast<int>(k);
    }
    for (auto [d, rows, c] : {std::tuple{&plan.train, &plan.train_rows, &clients}, std::tuple{&plan.test, &plan.test_rows, &test_clients}}) {
      std::vector<size_t> keep;
      for (size_t i = 0; i < d->labels.size(); ++i)
        if (position[static_cast<size_t>(d->labels[i])] >= 0) keep.push_back(i);
      Keep(keep, d, rows, c);
      for (auto& y : d->labels) y = position[static_cast<size_t>(y)];
      d->num_classes = static_cast<int>(spec.classes.size());
    }
  }
  EDGEBED_RETURN_IF_ERROR(Normalisation(spec, &plan.train));
  plan.test.mean = plan.train.mean;
  plan.test.std = plan.train.std;
  plan.client_ids = std::move(clients);
  return plan;
}

Result<Dataset> LoadTrainRows(const DataPlan& plan, const std::vector<uint32_t>& positions) {
  Dataset d;
  EDGEBED_RETURN_IF_ERROR(LoadView(plan.spec, true, plan.train, plan.train_rows, positions, &d));
  return d;
}

Result<Dataset> LoadTestSet(const DataPlan& plan) {
  std::vector<uint32_t> all(plan.test_rows.size());
  std::iota(all.begin(), all.end(), 0u);
  Dataset d;
  EDGEBED_RETURN_IF_ERROR(LoadView(plan.spec, false, plan.test, plan.test_rows, all, &d));
  return d;
}

Result<std::vector<std::vector<uint32_t>>> PartitionPlan(const DataPlan& plan, const PartitionSpec& spec) {
  const Dataset& t = plan.train;
  if (spec.kind == "natural" && plan.client_ids.empty())
    return Status::InvalidArgument("data.partition = natural needs client ids: an array client_id in the npz file");
  if (t.regression()) {
    if (spec.kind == "dirichlet" || spec.kind == "shards")
      return Status::InvalidArgument("data.partition = " + spec.kind + " splits by class label, but y holds float targets; allowed: iid, natural");
    return PartitionAll(std::vector<int32_t>(t.size(), 0), 1, spec, plan.client_ids);
  }
  return PartitionAll(t.labels, t.num_classes, spec, plan.client_ids);
}

Result<std::vector<uint64_t>> PartitionPlanSizes(const DataPlan& plan, const PartitionSpec& spec) {
  std::vector<uint64_t> sizes;
  if (spec.kind == "sample") {
    EDGEBED_ASSIGN_OR_RETURN(const uint64_t m, SampleDrawsPerNode(plan.train.size(), spec));
    sizes.assign(spec.num_nodes, m);
    return sizes;
  }
  EDGEBED_ASSIGN_OR_RETURN(const auto parts, PartitionPlan(plan, spec));
  sizes.reserve(parts.size());
  for (const auto& p : parts) sizes.push_back(p.size());
  return sizes;
}

}  // namespace edgebed
