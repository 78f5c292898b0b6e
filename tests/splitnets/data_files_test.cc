// Data from files: npz (numpy.savez and savez_compressed), idx (raw and gzip), CIFAR-10 batches,
// held-out test shares, natural partitions, and every malformed input as a named error.
#include <doctest/doctest.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <set>

#include "splitnets/data_files.h"
#include "splitnets/npz_file.h"
#include "tests/common/npz_writer.h"

using namespace edgebed;
using edgebed::testing::Npy;
using edgebed::testing::WriteNpz;
namespace fs = std::filesystem;

namespace {

std::string Dir() {
  static const std::string d = [] {
    const std::string p = (fs::temp_directory_path() / ("edgebed-data-test-" + std::to_string(getpid()))).string();
    fs::remove_all(p);
    fs::create_directories(p);
    return p;
  }();
  return d;
}

// 40 rows of x (2x3 float32, value 100 * row + k), y = row % 4, client ids of uneven sizes.
struct Arrays {
  std::vector<float> x;
  std::vector<int64_t> y;
  std::vector<int32_t> client;
};
Arrays MakeArrays(size_t n = 40) {
  Arrays a;
  for (size_t r = 0; r < n; ++r) {
    for (int k = 0; k < 6; ++k) a.x.push_back(static_cast<float>(100 * r + k));
    a.y.push_back(static_cast<int64_t>(r % 4));
    a.client.push_back(r < 5 ? 11 : r < 20 ? 12 : r < 38 ? 13 : 14);  // 5, 15, 18, 2 rows
  }
  return a;
}
std::string WriteArrays(const std::string& name, const Arrays& a, bool deflate, bool with_client = true) {
  const int64_t n = static_cast<int64_t>(a.y.size());
  std::map<std::string, std::string> m = {{"x", Npy("<f4", {n, 2, 3}, a.x.data(), a.x.size() * 4)},
                                          {"y", Npy("<i8", {n}, a.y.data(), a.y.size() * 8)}};
  if (with_client) m["client_id"] = Npy("<i4", {n}, a.client.data(), a.client.size() * 4);
  const std::string path = Dir() + "/" + name;
  WriteNpz(path, m, deflate);
  return path;
}

DataSpec NpzSpec(const std::string& train, double held_out = 0.25) {
  DataSpec s;
  s.format = "npz";
  s.train = train;
  s.held_out = held_out;
  s.seed = 5;
  return s;
}

bool Says(const Status& st, const std::string& text) {
  if (st.message().find(text) == std::string::npos) {
    MESSAGE("message was: " << st.message());
    return false;
  }
  return true;
}

}  // namespace

TEST_CASE("npz: stored and deflated members give back the rows asked for, and only those") {
  const Arrays a = MakeArrays();
  for (bool deflate : {false, true}) {
    CAPTURE(deflate);
    auto plan = PlanData(NpzSpec(WriteArrays(deflate ? "d.npz" : "s.npz", a, deflate)));
    REQUIRE(plan.ok());
    CHECK(plan->train.type == SampleType::kF32);
    CHECK(plan->train.sample_shape() == std::vector<int64_t>{2, 3});
    CHECK(plan->train.num_classes == 4);
    CHECK(plan->train_rows.size() + plan->test_rows.size() == 40);
    CHECK(plan->test_rows.size() == 10);  // 0.25 of 40 held out
    std::vector<uint64_t> all(plan->train_rows);
    all.insert(all.end(), plan->test_rows.begin(), plan->test_rows.end());
    std::sort(all.begin(), all.end());
    for (uint64_t i = 0; i < all.size(); ++i) CHECK(all[i] == i);  // a split: every row once
    // Positions in any order, one repeated: the samples of exactly those file rows, in that order.
    const std::vector<uint32_t> pos = {7, 2, 7, 0};
    auto d = LoadTrainRows(plan.value(), pos);
    REQUIRE(d.ok());
    REQUIRE(d->size() == 4);
    REQUIRE(d->features.size() == 4 * 6);
    for (size_t i = 0; i < pos.size(); ++i) {
      const uint64_t row = plan->train_rows[pos[i]];
      for (int k = 0; k < 6; ++k) CHECK(d->features[i * 6 + k] == static_cast<float>(100 * row + k));
      CHECK(d->labels[i] == static_cast<int32_t>(row % 4));
    }
    auto test = LoadTestSet(plan.value());
    REQUIRE(test.ok());
    CHECK(test->size() == 10);
    CHECK(test->features[0] == static_cast<float>(100 * plan->test_rows[0]));
  }
}

TEST_CASE("npz files written by numpy.savez and savez_compressed read back (committed, made by make_test_models.py)") {
  for (const char* name : {"savez.npz", "savez_compressed.npz"}) {
    CAPTURE(name);
    auto f = NpzFile::Open(std::string(EDGEBED_SOURCE_DIR) + "/tests/data/torchscript/" + name);
    REQUIRE(f.ok());
    auto x = f.value()->ReadFloat("x", nullptr);
    auto y = f.value()->ReadInt("y", nullptr);
    const std::vector<uint64_t> rows = {1, 4};
    auto c = f.value()->ReadInt("client_id", &rows);
    REQUIRE(x.ok());
    REQUIRE(y.ok());
    REQUIRE(c.ok());
    std::vector<float> want(36);
    std::iota(want.begin(), want.end(), 0.0f);
    CHECK(x.value() == want);  // np.arange(36).reshape(6, 2, 3)
    CHECK(y.value() == std::vector<int64_t>{0, 1, 2, 0, 1, 2});
    CHECK(c.value() == std::vector<int64_t>{7, 3});
    CHECK(f.value()->Header("x")->shape == std::vector<int64_t>{6, 2, 3});
  }
}

TEST_CASE("npz: uint8 images, int token sequences and float regression targets") {
  const int64_t n = 12;
  std::vector<uint8_t> img(n * 3 * 4 * 4);
  for (size_t i = 0; i < img.size(); ++i) img[i] = static_cast<uint8_t>(i % 251);
  std::vector<int32_t> tokens(n * 5);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(1000 + i);
  std::vector<float> targets(n * 2);
  for (size_t i = 0; i < targets.size(); ++i) targets[i] = 0.5f * static_cast<float>(i);
  std::vector<int64_t> y(n, 1);
  y[0] = 0;
  WriteNpz(Dir() + "/img.npz", {{"x", Npy("|u1", {n, 3, 4, 4}, img.data(), img.size())}, {"y", Npy("<i8", {n}, y.data(), n * 8)}}, true);
  WriteNpz(Dir() + "/tok.npz", {{"x", Npy("<i4", {n, 5}, tokens.data(), tokens.size() * 4)}, {"y", Npy("<i8", {n}, y.data(), n * 8)}}, false);
  WriteNpz(Dir() + "/reg.npz", {{"x", Npy("<i4", {n, 5}, tokens.data(), tokens.size() * 4)}, {"y", Npy("<f4", {n, 2}, targets.data(), targets.size() * 4)}}, false);

  DataSpec s = NpzSpec(Dir() + "/img.npz", 0.25);
  s.mean = {0.5, 0.5, 0.5};
  s.std = {0.25, 0.25, 0.25};
  auto plan = PlanData(s);
  REQUIRE(plan.ok());
  CHECK(plan->train.type == SampleType::kU8);
  CHECK(plan->train.sample_shape() == std::vector<int64_t>{3, 4, 4});
  CHECK(plan->train.mean == std::vector<float>{0.5f, 0.5f, 0.5f});
  auto d = LoadTrainRows(plan.value(), {0});
  REQUIRE(d.ok());
  const uint64_t row = plan->train_rows[0];
  for (size_t k = 0; k < 48; ++k) CHECK(d->images[k] == img[row * 48 + k]);

  plan = PlanData(NpzSpec(Dir() + "/tok.npz"));
  REQUIRE(plan.ok());
  CHECK(plan->train.type == SampleType::kI64);
  d = LoadTrainRows(plan.value(), {1});
  REQUIRE(d.ok());
  CHECK(d->tokens[0] == 1000 + 5 * static_cast<int64_t>(plan->train_rows[1]));

  plan = PlanData(NpzSpec(Dir() + "/reg.npz"));
  REQUIRE(plan.ok());
  CHECK(plan->train.regression());
  CHECK(plan->train.target_dim == 2);
  CHECK(plan->train.num_classes == 0);
  d = LoadTrainRows(plan.value(), {2});
  REQUIRE(d.ok());
  CHECK(d->targets == std::vector<float>{targets[plan->train_rows[2] * 2], targets[plan->train_rows[2] * 2 + 1]});
  PartitionSpec p;
  p.kind = "dirichlet";
  p.num_nodes = 2;
  CHECK(Says(PartitionPlan(plan.value(), p).status(), "float targets; allowed: iid, natural"));
  p.kind = "iid";
  CHECK(PartitionPlan(plan.value(), p).ok());
}

TEST_CASE("the natural partition gives each node exactly one client's rows, and says when clients run short") {
  const Arrays a = MakeArrays();
  DataSpec s = NpzSpec(WriteArrays("natural.npz", a, false), 0.0);
  s.test = WriteArrays("natural_test.npz", MakeArrays(8), false);
  auto plan = PlanData(s);
  REQUIRE(plan.ok());
  REQUIRE(plan->client_ids.size() == 40);
  PartitionSpec p;
  p.kind = "natural";
  p.num_nodes = 3;
  p.min_samples = 5;  // client 14 (2 rows) is left out; 11 (5), 12 (15), 13 (18) take part
  auto parts = PartitionPlan(plan.value(), p);
  REQUIRE(parts.ok());
  std::set<int64_t> seen;
  for (const auto& part : parts.value()) {
    REQUIRE_FALSE(part.empty());
    const int64_t id = plan->client_ids[part[0]];
    seen.insert(id);
    std::vector<uint32_t> want;
    for (uint32_t i = 0; i < 40; ++i)
      if (plan->client_ids[i] == id) want.push_back(i);
    CHECK(part == want);  // all of the client's rows and nothing else
  }
  CHECK(seen == std::set<int64_t>{11, 12, 13});
  p.num_nodes = 4;
  CHECK(Says(PartitionPlan(plan.value(), p).status(), "federation.nodes = 4 but only 3 of the 4 client ids hold at least data.min_samples = 5"));
  p.min_samples = 1;
  CHECK(PartitionPlan(plan.value(), p).ok());
  DataSpec no_clients = NpzSpec(WriteArrays("noclient.npz", a, false, /*with_client=*/false));
  auto plan2 = PlanData(no_clients);
  REQUIRE(plan2.ok());
  CHECK(Says(PartitionPlan(plan2.value(), p).status(), "needs client ids: an array client_id"));
}

TEST_CASE("partition sizes without the partition: the counts PartitionPlan's shares have, and its errors") {
  DataSpec s = NpzSpec(WriteArrays("sizes.npz", MakeArrays(40), false), 0.0);
  s.test = WriteArrays("sizes_test.npz", MakeArrays(8), false);
  auto plan = PlanData(s);
  REQUIRE(plan.ok());
  for (const char* kind : {"sample", "iid", "shards"}) {
    PartitionSpec p;
    p.kind = kind;
    p.num_nodes = kind == std::string("sample") ? 100 : 4;  // sample: more nodes than rows
    p.samples_per_node = 7;
    p.shards_per_node = 2;
    auto parts = PartitionPlan(plan.value(), p);
    auto sizes = PartitionPlanSizes(plan.value(), p);
    REQUIRE(parts.ok());
    REQUIRE(sizes.ok());
    REQUIRE(sizes->size() == parts->size());
    for (size_t k = 0; k < parts->size(); ++k) CHECK(sizes.value()[k] == parts.value()[k].size());
  }
  PartitionSpec big;
  big.kind = "sample";
  big.num_nodes = 1u << 20;
  big.samples_per_node = 4096;  // 2^32 draws
  CHECK(Says(PartitionPlanSizes(plan.value(), big).status(), "allowed up to 2^31 (lower data.samples_per_node)"));
}

TEST_CASE("idx pairs, raw and gzip, and CIFAR-10 batches read back the rows asked for") {
  const int n = 9;
  std::vector<uint8_t> images = {0, 0, 8, 3, 0, 0, 0, n, 0, 0, 0, 3, 0, 0, 0, 4};
  std::vector<uint8_t> labels = {0, 0, 8, 1, 0, 0, 0, n};
  for (int r = 0; r < n; ++r) {
    for (int k = 0; k < 12; ++k) images.push_back(static_cast<uint8_t>(10 * r + k));
    labels.push_back(static_cast<uint8_t>(r % 3));
  }
  std::ofstream(Dir() + "/im.idx", std::ios::binary).write(reinterpret_cast<const char*>(images.data()), static_cast<std::streamsize>(images.size()));
  std::ofstream(Dir() + "/lb.idx", std::ios::binary).write(reinterpret_cast<const char*>(labels.data()), static_cast<std::streamsize>(labels.size()));
  gzFile g = gzopen((Dir() + "/im.idx.gz").c_str(), "wb");
  gzwrite(g, images.data(), static_cast<unsigned>(images.size()));
  gzclose(g);
  for (const char* im : {"/im.idx", "/im.idx.gz"}) {
    CAPTURE(im);
    DataSpec s;
    s.format = "idx";
    s.train = Dir() + im;
    s.train_labels = Dir() + "/lb.idx";
    s.held_out = 0.3;
    auto plan = PlanData(s);
    REQUIRE(plan.ok());
    CHECK(plan->train.rows == 3);
    CHECK(plan->train.cols == 4);
    CHECK(plan->train.num_classes == 3);
    auto d = LoadTrainRows(plan.value(), {3, 1});
    REQUIRE(d.ok());
    for (int i = 0; i < 2; ++i) {
      const uint64_t row = plan->train_rows[i == 0 ? 3 : 1];
      CHECK(d->images[i * 12] == 10 * row);
      CHECK(d->images[i * 12 + 11] == 10 * row + 11);
      CHECK(d->labels[i] == static_cast<int32_t>(row % 3));
    }
  }
  // CIFAR-10: 7 training records in data_batch_1.bin, 4 in data_batch_2.bin, 3 test records.
  const std::string cifar = Dir() + "/cifar";
  fs::create_directories(cifar);
  auto write_batch = [&](const std::string& name, int first, int count) {
    std::ofstream f(cifar + "/" + name, std::ios::binary);
    for (int r = first; r < first + count; ++r) {
      std::vector<uint8_t> rec(3073);
      rec[0] = static_cast<uint8_t>(r % 10);
      for (size_t k = 1; k < rec.size(); ++k) rec[k] = static_cast<uint8_t>((r * 7 + k) % 256);
      f.write(reinterpret_cast<const char*>(rec.data()), 3073);
    }
  };
  write_batch("data_batch_1.bin", 0, 7);
  write_batch("data_batch_2.bin", 7, 4);
  write_batch("test_batch.bin", 100, 3);
  DataSpec c;
  c.format = "cifar10";
  c.dir = cifar;
  auto plan = PlanData(c);
  REQUIRE(plan.ok());
  CHECK(plan->train_rows.size() == 11);
  CHECK(plan->test_rows.size() == 3);
  CHECK(plan->train.sample_shape() == std::vector<int64_t>{3, 32, 32});
  CHECK(plan->train.mean.size() == 3);  // CIFAR-10's per-channel normalisation by default
  auto d = LoadTrainRows(plan.value(), {9, 2});  // one from each file, out of order
  REQUIRE(d.ok());
  CHECK(d->labels == std::vector<int32_t>{9, 2});
  CHECK(d->images[0] == (9 * 7 + 1) % 256);
  CHECK(d->images[3072 + 3071] == (2 * 7 + 3072) % 256);
  auto t = LoadTestSet(plan.value());
  REQUIRE(t.ok());
  CHECK(t->labels == std::vector<int32_t>{0, 1, 2});
  std::ofstream(cifar + "/data_batch_3.bin", std::ios::binary) << "short";
  CHECK(Says(PlanData(c).status(), "data_batch_3.bin: 5 bytes is not a whole number of 3,073-byte CIFAR-10 records"));
}

TEST_CASE("bad data files are errors naming the file, the array or the field") {
  const Arrays a = MakeArrays();
  CHECK(Says(PlanData(NpzSpec(Dir() + "/missing.npz")).status(), "data.train: cannot open " + Dir() + "/missing.npz"));
  std::ofstream(Dir() + "/notzip.npz") << "not a zip file";
  CHECK(Says(PlanData(NpzSpec(Dir() + "/notzip.npz")).status(), Dir() + "/notzip.npz"));
  std::vector<int64_t> y5(5, 0);
  WriteNpz(Dir() + "/rows.npz", {{"x", Npy("<f4", {40, 2, 3}, a.x.data(), a.x.size() * 4)}, {"y", Npy("<i8", {5}, y5.data(), 40)}}, false);
  CHECK(Says(PlanData(NpzSpec(Dir() + "/rows.npz")).status(), "y has 5 rows, x has 40"));
  WriteNpz(Dir() + "/noy.npz", {{"x", Npy("<f4", {40, 2, 3}, a.x.data(), a.x.size() * 4)}}, false);
  CHECK(Says(PlanData(NpzSpec(Dir() + "/noy.npz")).status(), "has no array 'y'"));
  WriteNpz(Dir() + "/fortran.npz", {{"x", Npy("<f4", {40, 2, 3}, a.x.data(), a.x.size() * 4, true)}, {"y", Npy("<i8", {40}, a.y.data(), 320)}}, false);
  CHECK(Says(PlanData(NpzSpec(Dir() + "/fortran.npz")).status(), "member x.npy: Fortran-order arrays are not supported"));
  WriteNpz(Dir() + "/big.npz", {{"x", Npy(">f4", {40, 2, 3}, a.x.data(), a.x.size() * 4)}, {"y", Npy("<i8", {40}, a.y.data(), 320)}}, false);
  CHECK(Says(PlanData(NpzSpec(Dir() + "/big.npz")).status(), "big-endian"));
  WriteNpz(Dir() + "/cut.npz", {{"x", Npy("<f4", {40, 2, 3}, a.x.data(), 100)}, {"y", Npy("<i8", {40}, a.y.data(), 320)}}, false);
  CHECK(Says(PlanData(NpzSpec(Dir() + "/cut.npz")).status(), "x.npy: holds 100 data bytes; shape and dtype need 960"));
  std::vector<int64_t> neg = a.y;
  neg[3] = -1;
  WriteNpz(Dir() + "/neg.npz", {{"x", Npy("<f4", {40, 2, 3}, a.x.data(), a.x.size() * 4)}, {"y", Npy("<i8", {40}, neg.data(), 320)}}, false);
  CHECK(Says(PlanData(NpzSpec(Dir() + "/neg.npz")).status(), "y[3] = -1 is outside 0..65535"));

  const std::string good = WriteArrays("good.npz", a, false);
  CHECK(Says(PlanData(NpzSpec(good, 0.0)).status(), "data.test is empty and data.held_out = 0"));
  DataSpec s = NpzSpec(good);
  s.mean = {0.1, 0.2};  // x is (2, 3): 2 channels
  s.std = {1.0, 1.0};
  CHECK(PlanData(s).ok());
  s.mean = {0.1, 0.2, 0.3};
  s.std = {1.0, 1.0, 1.0};
  CHECK(Says(PlanData(s).status(), "data.mean and data.std hold 3 and 3 values; allowed: both 1 or both 2"));
  s.std = {1.0};
  CHECK(Says(PlanData(s).status(), "hold 3 and 1 values"));
  s = NpzSpec(good);
  s.classes = {1, 7};
  CHECK(Says(PlanData(s).status(), "data.classes: class 7 is outside 0..3"));
  s.classes = {1, 3};
  auto two = PlanData(s);
  REQUIRE(two.ok());
  CHECK(two->train.num_classes == 2);
  for (int32_t yv : two->train.labels) CHECK((yv == 0 || yv == 1));  // relabelled by position
  s = NpzSpec(good, 0.0);
  std::vector<int64_t> y9(8, 9);
  WriteNpz(Dir() + "/test9.npz", {{"x", Npy("<f4", {8, 2, 3}, a.x.data(), 8 * 24)}, {"y", Npy("<i8", {8}, y9.data(), 64)}}, false);
  s.test = Dir() + "/test9.npz";
  CHECK(Says(PlanData(s).status(), "data.test: label 9 is outside the training labels 0..3"));
  s.held_out = 0.2;
  CHECK(Says(PlanData(s).status(), "with a test file: give one or the other"));
  DataSpec idx;
  idx.format = "idx";
  idx.train = Dir() + "/im.idx";
  CHECK(Says(PlanData(idx).status(), "data.train_labels"));
}
