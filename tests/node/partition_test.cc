#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "codecs/rng.h"
#include "node/local_training.h"
#include "splitnets/dataset.h"
#include "splitnets/partition.h"

using namespace edgebed;

namespace {
std::vector<int32_t> Labels(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> y(n);
  for (auto& v : y) v = static_cast<uint8_t>(rng() % 10);
  return y;
}
// The join_ack of a logreg federation on the first `rows` Fashion-MNIST training images.
wire::JoinAck FashionAck(const std::string& partition, uint32_t nodes, uint32_t rows) {
  wire::JoinAck ack;
  ack.set_accepted(true);
  ack.set_model("logreg");
  ack.set_partition(partition);
  ack.set_num_nodes(nodes);
  ack.set_seed(3);
  ack.set_train_limit(rows);
  ack.mutable_data()->set_format("fashion-mnist");
  ack.mutable_data()->set_train_rows(rows);
  return ack;
}
// Every index appears in exactly one node.
void CheckCover(const std::vector<std::vector<uint32_t>>& parts, size_t n) {
  std::vector<int> seen(n, 0);
  for (const auto& p : parts)
    for (uint32_t i : p) ++seen[i];
  CHECK(std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; }));
}
// Mean over nodes of the number of classes holding >= 5% of the node's samples.
double MeanClassesPerNode(const std::vector<std::vector<uint32_t>>& parts, const std::vector<int32_t>& y) {
  double total = 0;
  for (const auto& p : parts) {
    std::vector<int> c(10, 0);
    for (uint32_t i : p) ++c[y[i]];
    for (int k : c) total += k >= 0.05 * static_cast<double>(p.size());
  }
  return total / static_cast<double>(parts.size());
}
}  // namespace

TEST_CASE("IID splits evenly and covers every sample once") {
  const auto y = Labels(6000, 1);
  PartitionSpec s{"iid", 0.5, 2, 7, 11};
  auto parts = PartitionAll(y, 10, s);
  REQUIRE(parts.ok());
  CheckCover(parts.value(), y.size());
  for (const auto& p : parts.value()) CHECK((p.size() == 857 || p.size() == 858));
}

TEST_CASE("Dirichlet label skew grows as alpha shrinks, covers all samples, is seeded") {
  const auto y = Labels(20000, 2);
  PartitionSpec skewed{"dirichlet", 0.1, 2, 10, 5};
  PartitionSpec mild{"dirichlet", 100.0, 2, 10, 5};
  auto a = PartitionAll(y, 10, skewed), b = PartitionAll(y, 10, mild);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CheckCover(a.value(), y.size());
  CheckCover(b.value(), y.size());
  CHECK(MeanClassesPerNode(a.value(), y) < 5.0);
  CHECK(MeanClassesPerNode(b.value(), y) == doctest::Approx(10.0));
  for (const auto& p : a.value()) CHECK(p.size() >= skewed.min_samples);

  auto again = PartitionAll(y, 10, skewed);
  CHECK(again.value() == a.value());
  PartitionSpec other = skewed;
  other.seed = 6;
  CHECK(PartitionAll(y, 10, other).value() != a.value());
}

TEST_CASE("shards give each node about shards_per_node labels") {
  const auto y = Labels(10000, 3);
  PartitionSpec s{"shards", 0.5, 2, 10, 9};
  auto parts = PartitionAll(y, 10, s);
  REQUIRE(parts.ok());
  CheckCover(parts.value(), y.size());
  CHECK(MeanClassesPerNode(parts.value(), y) <= 3.0);
}

TEST_CASE("a node's own share equals its slot in the full partition") {
  const auto y = Labels(3000, 4);
  PartitionSpec s{"dirichlet", 0.5, 2, 5, 1};
  auto all = PartitionAll(y, 10, s);
  for (uint32_t k = 0; k < 5; ++k) CHECK(PartitionFor(y, 10, s, k).value() == all.value()[k]);
  CHECK(PartitionFor(y, 10, s, 5).status().message().find("out of range [0, 4]") != std::string::npos);
}

TEST_CASE("impossible partitions fail naming the field") {
  const auto y = Labels(100, 5);
  CHECK(PartitionAll(y, 10, {"zipf", 0.5, 2, 4, 1}).status().message().find("data.partition") != std::string::npos);
  CHECK(PartitionAll(y, 10, {"dirichlet", 0.0, 2, 4, 1}).status().message().find("data.alpha") != std::string::npos);
  CHECK(PartitionAll(y, 10, {"shards", 0.5, 50, 4, 1}).status().message().find("data.shards_per_node") != std::string::npos);
  CHECK(PartitionAll(y, 10, {"iid", 0.5, 2, 101, 1}).status().message().find("federation.nodes") != std::string::npos);
}

TEST_CASE("the labels-only reader gives the labels the full reader gives, so partitions match") {
  auto full = LoadFashionMnist(DefaultFashionMnistDir(), true, 6000);
  auto labels = LoadFashionMnistLabels(DefaultFashionMnistDir(), true, 6000);
  REQUIRE(full.ok());
  REQUIRE(labels.ok());
  CHECK(labels->labels == full->labels);
  CHECK(labels->images.empty());
  PartitionSpec s;
  s.kind = "dirichlet";
  s.num_nodes = 10;
  s.seed = 3;
  CHECK(PartitionAll(labels->labels, 10, s).value() == PartitionAll(full->labels, 10, s).value());
  CHECK(LoadFashionMnistLabels("/nonexistent", true).status().message().find("/nonexistent/train-") != std::string::npos);
}

TEST_CASE("a node reads only its own partition's rows, and a node host only its nodes' rows") {
  wire::JoinAck ack = FashionAck("dirichlet", 10, 6000);
  ack.set_dirichlet_alpha(0.5);
  auto full = LoadFashionMnist(DefaultFashionMnistDir(), true, 6000);
  REQUIRE(full.ok());
  PartitionSpec s;
  s.kind = "dirichlet";
  s.num_nodes = 10;
  s.seed = 3;
  const auto parts = PartitionAll(full->labels, 10, s).value();
  for (auto [first, count] : {std::pair<uint32_t, uint32_t>{3, 1}, {2, 3}}) {
    CAPTURE(first);
    auto setup = PrepareFromJoinAck(ack, NodeData{}, first, count);
    REQUIRE_MESSAGE(setup.ok(), setup.status().message());
    size_t held = 0;
    for (uint32_t k = 0; k < 10; ++k) {
      const bool hosted = k >= first && k < first + count;
      CHECK(setup->parts[k].size() == (hosted ? parts[k].size() : 0u));
      if (!hosted) continue;
      held += parts[k].size();
      for (size_t i = 0; i < parts[k].size(); ++i) {  // position i of node k is its i-th training row
        const uint32_t local = setup->parts[k][i], row = parts[k][i];
        CHECK(setup->data.labels[local] == full->labels[row]);
        CHECK(std::equal(setup->data.images.begin() + local * 784, setup->data.images.begin() + (local + 1) * 784,
                         full->images.begin() + row * 784));
      }
    }
    CHECK(setup->data.size() == held);  // nothing else in memory
    CHECK(setup->data.images.size() == held * 784);
  }
  ack.mutable_data()->set_train_rows(60000);  // the server saw other files
  CHECK(PrepareFromJoinAck(ack, NodeData{}, 0, 1).status().message().find("every node needs the server's data files") != std::string::npos);
}

TEST_CASE("sample: 100,000 nodes draw with replacement from 6,000 samples, uniformly, each from its own seed") {
  const auto y = Labels(6000, 7);
  PartitionSpec s{"sample", 0.5, 2, 100000, 3};
  s.samples_per_node = 60;
  auto parts = PartitionAll(y, 10, s);
  REQUIRE(parts.ok());
  REQUIRE(parts->size() == 100000u);
  std::vector<int> draws(y.size(), 0);
  size_t nodes_with_a_repeat = 0;
  for (const auto& p : parts.value()) {
    REQUIRE(p.size() == 60u);
    CHECK(std::is_sorted(p.begin(), p.end()));
    nodes_with_a_repeat += std::adjacent_find(p.begin(), p.end()) != p.end();
    for (uint32_t i : p) ++draws[i];  // the vector's bounds: every index < 6000
  }
  // Each sample is drawn Binomial(6e6, 1/6000) ~ 1000 +- 31.6 times; 6 sigma either way over 6,000 samples.
  CHECK(*std::min_element(draws.begin(), draws.end()) > 1000 - 190);
  CHECK(*std::max_element(draws.begin(), draws.end()) < 1000 + 190);
  // A node repeats a sample with probability 1 - prod(1 - i/6000), i < 60: 0.2562; binomial spread over 1e5
  // nodes 0.0014 (0.54%): within 4 sigma.
  CHECK(static_cast<double>(nodes_with_a_repeat) / 1e5 == doctest::Approx(0.2562).epsilon(0.022));
  // Node 5 draws the same rows whatever the number of nodes; the seed changes them.
  PartitionSpec few = s;
  few.num_nodes = 10;
  CHECK(PartitionAll(y, 10, few).value()[5] == parts.value()[5]);
  few.seed = 4;
  CHECK(PartitionAll(y, 10, few).value()[5] != parts.value()[5]);
  // The default size: samples / nodes.
  few.samples_per_node = 0;
  CHECK(PartitionAll(y, 10, few).value()[0].size() == 600u);
}

TEST_CASE("more nodes than samples: refused naming sample as the way out; too many draws refused by name") {
  const auto y = Labels(100, 5);
  CHECK(PartitionAll(y, 10, {"dirichlet", 0.5, 2, 101, 1}).status().message().find("data.partition = sample") != std::string::npos);
  PartitionSpec huge{"sample", 0.5, 2, 1000000, 1};
  huge.samples_per_node = 5000;
  CHECK(PartitionAll(y, 10, huge).status().message().find("data.samples_per_node") != std::string::npos);
  CHECK(PartitionAll({}, 10, {"sample", 0.5, 2, 4, 1}).status().message().find("empty") != std::string::npos);
}

TEST_CASE("a node host under partition = sample reads each row its nodes share once") {
  wire::JoinAck ack = FashionAck("sample", 1000, 600);
  ack.set_samples_per_node(50);
  auto full = LoadFashionMnist(DefaultFashionMnistDir(), true, 600);
  REQUIRE(full.ok());
  PartitionSpec s{"sample", 0.5, 2, 1000, 3};
  s.samples_per_node = 50;
  const auto parts = PartitionAll(full->labels, 10, s).value();
  auto setup = PrepareFromJoinAck(ack, NodeData{}, 0, 1000);  // one host for all 1,000 nodes: 50,000 draws
  REQUIRE_MESSAGE(setup.ok(), setup.status().message());
  std::set<uint32_t> distinct;
  for (uint32_t k = 0; k < 1000; ++k) {
    REQUIRE(setup->parts[k].size() == 50u);
    for (size_t i = 0; i < 50; ++i) {
      const uint32_t local = setup->parts[k][i], row = parts[k][i];
      distinct.insert(row);
      CHECK(setup->data.labels[local] == full->labels[row]);
      CHECK(std::equal(setup->data.images.begin() + local * 784, setup->data.images.begin() + (local + 1) * 784,
                       full->images.begin() + row * 784));
    }
  }
  CHECK(setup->data.size() == distinct.size());  // each row once, not 50,000 copies
  CHECK(distinct.size() <= 600u);
}
