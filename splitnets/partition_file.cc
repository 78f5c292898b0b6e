#include "splitnets/partition_file.h"

#include <nlohmann/json.hpp>

#include "splitnets/data_sources.h"
#include "splitnets/npz_file.h"

namespace edgebed {
namespace {

using json = nlohmann::json;

// The settings that decide which rows a node holds, in a fixed order (the first mismatch is named).
json Stamp(const PartitionCut& c) {
  return json{{"node_index", c.node_index},
              {"num_nodes", c.partition.num_nodes},
              {"partition", c.partition.kind},
              {"dirichlet_alpha", c.partition.alpha},
              {"shards_per_node", c.partition.shards_per_node},
              {"min_samples", c.partition.min_samples},
              {"seed", c.partition.seed},
              {"data.format", c.data.format},
              {"data.train_limit", c.data.train_limit},
              {"data.held_out", c.data.held_out},
              {"data.classes", c.data.classes},
              {"train_rows", c.train_rows}};
}

std::string Show(const json& v) { return v.is_string() ? "'" + v.get<std::string>() + "'" : v.dump(); }

}  // namespace

Status WritePartitionFile(const std::string& path, const Dataset& d, const PartitionCut& cut) {
  json meta = Stamp(cut);
  meta["num_classes"] = d.num_classes;
  meta["mean"] = d.mean;
  meta["std"] = d.std;
  const std::string text = meta.dump();
  const int64_t n = static_cast<int64_t>(d.size());
  std::vector<int64_t> xshape = {n};
  for (int64_t s : d.sample_shape()) xshape.push_back(s);
  std::vector<NpyArray> arrays;
  switch (d.type) {
    case SampleType::kU8: arrays.push_back({"x", "|u1", xshape, d.images.data(), d.images.size()}); break;
    case SampleType::kF32: arrays.push_back({"x", "<f4", xshape, d.features.data(), d.features.size() * 4}); break;
    case SampleType::kI64: arrays.push_back({"x", "<i8", xshape, d.tokens.data(), d.tokens.size() * 8}); break;
  }
  std::vector<int64_t> labels(d.labels.begin(), d.labels.end());
  if (d.regression())
    arrays.push_back({"y", "<f4", {n, static_cast<int64_t>(d.target_dim)}, d.targets.data(), d.targets.size() * 4});
  else
    arrays.push_back({"y", "<i8", {n}, labels.data(), labels.size() * 8});
  arrays.push_back({"edgebed_partition", "|u1", {static_cast<int64_t>(text.size())}, text.data(), text.size()});
  return WriteNpz(path, arrays);
}

Result<Dataset> ReadPartitionFile(const std::string& path, const PartitionCut& expected) {
  json meta;
  {
    auto f = NpzFile::Open(path);
    if (!f.ok()) return Status::NotFound("--partition: " + f.status().message());
    if (!f.value()->Has("edgebed_partition"))
      return Status::InvalidArgument(path + ": not a partition file (no edgebed_partition member); make one with `edgebed partition`");
    EDGEBED_ASSIGN_OR_RETURN(std::vector<uint8_t> text, f.value()->ReadU8("edgebed_partition", nullptr));
    meta = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (!meta.is_object()) return Status::Corruption(path + ": its edgebed_partition stamp is not JSON");
  }
  const json want = Stamp(expected);
  for (const auto& [key, value] : want.items()) {
    if (!meta.contains(key)) return Status::Corruption(path + ": its stamp has no " + key);
    if (meta[key] != value)
      return Status::InvalidArgument(path + " was cut for " + key + " = " + Show(meta[key]) + "; this node's run has " +
                                     Show(value) + " (cut it again: edgebed partition SCENARIO --out DIR)");
  }
  DataSpec spec;
  spec.format = "npz";
  spec.train = path;
  EDGEBED_ASSIGN_OR_RETURN(auto source, OpenSource(spec, true));
  Dataset d;
  std::vector<int64_t> clients;
  EDGEBED_RETURN_IF_ERROR(source->ReadTargets(&d, &clients));
  std::vector<uint64_t> rows(source->rows());
  for (uint64_t i = 0; i < rows.size(); ++i) rows[i] = i;
  EDGEBED_RETURN_IF_ERROR(source->ReadSamples(rows, &d));
  try {
    d.num_classes = meta.at("num_classes").get<int>();
    d.mean = meta.at("mean").get<std::vector<float>>();
    d.std = meta.at("std").get<std::vector<float>>();
  } catch (const json::exception& e) {
    return Status::Corruption(path + ": its stamp lacks the class count or normalisation (" + e.what() + ")");
  }
  if (!d.regression())
    for (size_t i = 0; i < d.labels.size(); ++i)
      if (d.labels[i] >= d.num_classes)
        return Status::InvalidArgument(path + ": y[" + std::to_string(i) + "] = " + std::to_string(d.labels[i]) +
                                       " is outside 0.." + std::to_string(d.num_classes - 1));
  return d;
}

}  // namespace edgebed
