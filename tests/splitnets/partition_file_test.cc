// Partition files (`edgebed partition`, `edgebed node --partition`): a node's rows round-trip with
// their class count and normalisation, and a file cut for another node or other settings is refused
// naming the setting.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>

#include "splitnets/data_files.h"
#include "splitnets/npz_file.h"
#include "splitnets/partition_file.h"

using namespace edgebed;
namespace fs = std::filesystem;

namespace {

std::string TempFile(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("edgebed-partfile-" + std::to_string(getpid()));
  fs::create_directories(d);
  return (d / name).string();
}

struct Cut {
  DataPlan plan;
  std::vector<std::vector<uint32_t>> parts;
  PartitionCut stamp;
};

// Fashion-MNIST's first 600 rows, classes 2..6 (relabelled), three nodes, Dirichlet: node 1's share.
Cut FashionCut() {
  DataSpec spec;
  spec.train_limit = 600;
  spec.classes = {2, 3, 4, 5, 6};
  spec.seed = 5;
  auto plan = PlanData(spec);
  REQUIRE_MESSAGE(plan.ok(), plan.status().message());
  PartitionSpec p;
  p.kind = "dirichlet";
  p.alpha = 0.3;
  p.num_nodes = 3;
  p.seed = 5;
  auto parts = PartitionPlan(plan.value(), p);
  REQUIRE(parts.ok());
  return {plan.value(), parts.value(), PartitionCut{spec, p, 1, plan->train_rows.size()}};
}

}  // namespace

TEST_CASE("a node's rows written to a partition file read back the same, with classes and normalisation") {
  Cut c = FashionCut();
  auto rows = LoadTrainRows(c.plan, c.parts[1]);
  REQUIRE(rows.ok());
  REQUIRE(rows->size() > 0);
  const std::string file = TempFile("node-1.npz");
  REQUIRE(WritePartitionFile(file, rows.value(), c.stamp).ok());
  auto back = ReadPartitionFile(file, c.stamp);
  REQUIRE_MESSAGE(back.ok(), back.status().message());
  CHECK(back->size() == rows->size());
  CHECK(back->images == rows->images);
  CHECK(back->labels == rows->labels);
  CHECK(back->num_classes == 5);  // the set's class count, even if this node lacks a class
  CHECK(back->mean == rows->mean);
  CHECK(back->std == rows->std);
  CHECK(back->sample_shape() == rows->sample_shape());
  fs::remove(file);
}

TEST_CASE("float features and regression targets round-trip too") {
  Dataset d;
  d.type = SampleType::kF32;
  d.shape = {3};
  d.num_classes = 0;
  d.target_dim = 2;
  d.features = {1.5f, -2.0f, 3.25f, 4.0f, 5.0f, -6.5f};
  d.targets = {0.1f, 0.2f, 0.3f, 0.4f};
  d.mean = {0.5f};
  d.std = {2.0f};
  PartitionCut cut;
  cut.data.format = "npz";
  cut.partition.num_nodes = 4;
  cut.node_index = 3;
  cut.train_rows = 8;
  const std::string file = TempFile("reg.npz");
  REQUIRE(WritePartitionFile(file, d, cut).ok());
  auto back = ReadPartitionFile(file, cut);
  REQUIRE_MESSAGE(back.ok(), back.status().message());
  CHECK(back->features == d.features);
  CHECK(back->targets == d.targets);
  CHECK(back->target_dim == 2);
  CHECK(back->mean == d.mean);
  CHECK(back->std == d.std);
  fs::remove(file);
}

TEST_CASE("a partition file cut for another node or other settings is refused, naming the setting") {
  Cut c = FashionCut();
  auto rows = LoadTrainRows(c.plan, c.parts[1]);
  REQUIRE(rows.ok());
  const std::string file = TempFile("node-1-check.npz");
  REQUIRE(WritePartitionFile(file, rows.value(), c.stamp).ok());
  auto refused = [&](PartitionCut other, const std::string& what) {
    auto r = ReadPartitionFile(file, other);
    REQUIRE_FALSE(r.ok());
    CHECK_MESSAGE(r.status().message().find(what) != std::string::npos, r.status().message());
    CHECK(r.status().message().find(file) != std::string::npos);
  };
  PartitionCut other = c.stamp;
  other.node_index = 2;
  refused(other, "node_index = 1; this node's run has 2");
  other = c.stamp;
  other.partition.kind = "iid";
  refused(other, "partition = 'dirichlet'; this node's run has 'iid'");
  other = c.stamp;
  other.partition.seed = 6;
  refused(other, "seed = 5");
  other = c.stamp;
  other.data.classes = {2, 3};
  refused(other, "data.classes");
  other = c.stamp;
  other.train_rows += 1;
  refused(other, "train_rows");

  const std::string plain = TempFile("plain.npz");  // an npz without the stamp
  const float x[2] = {1, 2};
  const int64_t y[2] = {0, 1};
  REQUIRE(WriteNpz(plain, {{"x", "<f4", {2, 1}, x, sizeof x}, {"y", "<i8", {2}, y, sizeof y}}).ok());
  auto r = ReadPartitionFile(plain, c.stamp);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("not a partition file") != std::string::npos);
  CHECK(ReadPartitionFile(TempFile("missing.npz"), c.stamp).status().message().find("missing.npz") != std::string::npos);
  Status st = WritePartitionFile("/nonexistent-dir/node-0.npz", rows.value(), c.stamp);
  REQUIRE_FALSE(st.ok());
  CHECK(st.message().find("/nonexistent-dir/node-0.npz") != std::string::npos);
  fs::remove(file);
  fs::remove(plain);
}
