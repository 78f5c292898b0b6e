#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "scenarios/scenario.h"

using namespace edgebed;

namespace {
Status Parse(const std::vector<std::string>& overrides) {
  return ParseScenario(DefaultScenarioText(), overrides, "default").status();
}
bool Names(const Status& st, const std::string& field) {
  return !st.ok() && st.message().find(field) != std::string::npos;
}
}  // namespace

TEST_CASE("the embedded default is the 10-node Dirichlet(0.5) federation") {
  auto sc = ParseScenario(DefaultScenarioText(), {}, "default");
  REQUIRE(sc.ok());
  CHECK(sc->nodes == 10);
  CHECK(sc->partition == "dirichlet");
  CHECK(sc->dirichlet_alpha == doctest::Approx(0.5));
  CHECK(sc->model == "cnn");
  CHECK(sc->strategy == "fedavg");
}

TEST_CASE("command-line overrides change any field, typed by TOML syntax") {
  auto sc = ParseScenario(DefaultScenarioText(),
                          {"federation.rounds=3", "data.alpha=0.1", "data.partition=iid", "training.learning_rate=1e-2",
                           "faults.crash=[{node = 2, round = 2}]", "output_dir=/tmp/x"},
                          "default");
  REQUIRE(sc.ok());
  CHECK(sc->rounds == 3);
  CHECK(sc->dirichlet_alpha == doctest::Approx(0.1));
  CHECK(sc->partition == "iid");
  CHECK(sc->learning_rate == doctest::Approx(0.01));
  CHECK(sc->output_dir == "/tmp/x");
  REQUIRE(sc->crashes.size() == 1);
  CHECK(sc->crashes[0].node == 2);
}

TEST_CASE("bad fields fail at load with a message naming the field and the allowed range") {
  CHECK(Names(Parse({"data.alpha=0"}), "data.alpha = 0 is out of range (0, 1e+06]"));
  CHECK(Names(Parse({"data.alpha=-1"}), "data.alpha"));
  CHECK(Names(Parse({"federation.rounds=0"}), "federation.rounds = 0 is out of range [1,"));
  CHECK(Names(Parse({"federation.nodes=\"ten\""}), "federation.nodes must be an integer"));
  CHECK(Names(Parse({"federation.fraction=1.5"}), "federation.fraction"));
  CHECK(Names(Parse({"data.partition=zipf"}), "data.partition = 'zipf' is not allowed; allowed: iid, dirichlet, shards, natural"));
  CHECK(Names(Parse({"model.name=resnet"}), "model.name"));
  CHECK(Names(Parse({"federation.strategy=krum"}), "federation.strategy"));
  CHECK(Names(Parse({"channel.uplink=laser"}), "channel.uplink"));
  CHECK(Names(Parse({"channel.gain_threshold=-0.5"}), "channel.gain_threshold = -0.5 is out of range [0, 100]"));
  CHECK(Names(Parse({"channel.modulation=qam1024"}), "channel.modulation = 'qam1024' is not allowed"));
  CHECK(Names(Parse({"channel.fec=turbo"}), "channel.fec = 'turbo' is not allowed"));
  CHECK(Names(Parse({"channel.snr_db=-45"}), "channel.snr_db = -45 is out of range [-30, 60]"));
  CHECK(Names(Parse({"channel.packet_bytes=30"}), "channel.packet_bytes = 30 must be a multiple of 4"));
  CHECK(Names(Parse({"channel.distance_min_m=50"}), "channel.distance_max_m = 10 is out of range [50,"));
  CHECK(Names(Parse({"server.bind=localhost"}), "server.bind"));
  CHECK(Names(Parse({"server.liveness_timeout_s=-2"}), "server.liveness_timeout_s"));
  CHECK(Names(Parse({"faults.crash=[{node = 99, round = 1}]"}), "faults.crash[0].node"));
  CHECK(Names(Parse({"training.batchsize=3"}), "unknown field 'training.batchsize'"));
  CHECK(Names(Parse({"profiles.slow.uplink_bps=-5", "population.profiles=slow"}),
              "profiles.slow.uplink_bps = -5 is out of range [0, 1e+12]"));
  CHECK(Names(Parse({"profiles.slow.upload_bps=5"}), "unknown field 'profiles.slow.upload_bps'"));
  CHECK(Names(Parse({"population.availability=trace", "population.trace_file=/nonexistent.csv"}),
              "population.trace_file = '/nonexistent.csv' cannot be opened"));
  CHECK(Names(Parse({"population.profiles=toaster"}), "population.profiles: profile 'toaster' is unknown"));
  CHECK(Names(Parse({"population.simulated=11"}), "population.simulated = 11 is out of range [0, 10]"));
  CHECK(Names(Parse({"federation.selection=fastest"}), "federation.selection"));
  CHECK(Names(Parse({"rounds"}), "must look like section.field=value"));
}

TEST_CASE("TOML syntax errors name the source, line and column") {
  auto sc = ParseScenario("name = \n", {}, "broken.toml");
  REQUIRE_FALSE(sc.ok());
  CHECK(sc.status().message().rfind("broken.toml:1:", 0) == 0);
}

TEST_CASE("the resolved scenario loads back to the same values") {
  auto a = ParseScenario(DefaultScenarioText(), {"federation.rounds=7", "faults.crash=[{node = 1, round = 3}]"}, "a");
  REQUIRE(a.ok());
  auto b = ParseScenario(a->ToToml(), {}, "resolved");
  REQUIRE(b.ok());
  CHECK(b->ToToml() == a->ToToml());
  CHECK(b->rounds == 7);
  CHECK(b->channel.uplink == a->channel.uplink);
  CHECK(b->channel.gain_threshold == a->channel.gain_threshold);
  auto c = ParseScenario(DefaultScenarioText(), {"profiles.slow.train_gflops=0.5", "population.profiles=\"slow:1,rpi4:1\"",
                                                 "population.simulated=5"}, "c");
  REQUIRE(c.ok());
  auto d = ParseScenario(c->ToToml(), {}, "resolved");
  REQUIRE(d.ok());
  CHECK(d->custom_profiles.at("slow").train_gflops == 0.5);
  CHECK(d->simulated == 5);
  CHECK(b->crashes.size() == 1);
}

TEST_CASE("every scenario file in scenarios/ loads") {
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(std::string(EDGEBED_SOURCE_DIR) + "/scenarios")) {
    if (e.path().extension() != ".toml") continue;
    ++files;
    auto sc = LoadScenario(e.path().string(), {});
    CHECK_MESSAGE(sc.ok(), e.path().filename().string() << ": " << sc.status().message());
  }
  CHECK(files >= 10);
  CHECK(LoadScenario("/nonexistent.toml", {}).status().code() == Status::Code::kNotFound);
}

TEST_CASE("digital OTA fields and Byzantine faults: checked by name, and they survive the resolved scenario") {
  auto sc = ParseScenario(DefaultScenarioText(),
                          {"channel.uplink=\"digital_ota\"", "channel.snr_reference=\"sum\"", "ota.decoder=\"amp_da_net\"",
                           "ota.aggregate=\"median\"", "ota.error_feedback=false",
                           "faults.corrupt=[{node = 2, kind = \"scale\", factor = -4.0, from_round = 3}, {node = 5}]"},
                          "default");
  REQUIRE(sc.ok());
  CHECK(sc->ota.aggregate == "median");
  CHECK(!sc->ota.error_feedback);
  REQUIRE(sc->corrupt.size() == 2);
  CHECK(sc->corrupt[0].factor == -4.0);
  CHECK(sc->corrupt[0].from_round == 3);
  CHECK(sc->corrupt[1].kind == "sign_flip");
  CHECK(sc->corrupt[1].factor == -1.0);
  auto back = ParseScenario(sc->ToToml(), {}, "resolved");
  REQUIRE(back.ok());
  CHECK(back->ToToml() == sc->ToToml());
  CHECK(back->channel.snr_reference == "sum");

  CHECK(Parse({"ota.decoder=\"genie\""}).message().find("ota.decoder") != std::string::npos);
  CHECK(Parse({"ota.trim=0.5"}).message().find("ota.trim = 0.5 is out of range [0, 0.49]") != std::string::npos);
  CHECK(Parse({"ota.error_feedback=1"}).message().find("ota.error_feedback must be true or false") != std::string::npos);
  CHECK(Parse({"ota.collect=\"x.bin\""}).message().find("ota.collect needs channel.uplink") != std::string::npos);
  CHECK(Parse({"channel.snr_reference=\"peak\""}).message().find("channel.snr_reference") != std::string::npos);
  CHECK(Parse({"faults.corrupt=[{node = 99}]"}).message().find("faults.corrupt[0].node") != std::string::npos);
  CHECK(Parse({"faults.corrupt=[{node = 1, kind = \"scale\", factor = 0.0}]"}).message().find("factor = 0") !=
        std::string::npos);
  CHECK(Parse({"channel.uplink=\"digital_ota\"", "channel.relay_nodes=1"}).message().find("channel.relay_nodes") !=
        std::string::npos);
}

TEST_CASE("transfer and class fields: checked at load, naming the field and what is allowed") {
  CHECK(Names(Parse({"data.classes='5-12'"}), "data.classes = \"5-12\": '5-12' is out of range"));
  CHECK(Names(Parse({"data.classes='3'"}), "needs at least two classes"));
  CHECK(Names(Parse({"data.classes='1,1,2'"}), "class 1 repeats"));
  CHECK(Names(Parse({"transfer.backbone='bb.pt'"}), "transfer learning needs an IRB network"));
  CHECK(Names(Parse({"model.name=irbnet", "transfer.mode=lora"}), "transfer.mode = 'lora' is not allowed"));
  CHECK(Names(Parse({"model.name=irbnet", "transfer.blocks=7"}), "transfer.blocks = 7 is out of range [1, 6]"));
  CHECK(Names(Parse({"model.name=irbnet", "transfer.backbone='bb.pt'", "transfer.memory_budget_kb=10"}),
              "transfer.memory_budget_kb = 10 KB is below"));
  auto sc = ParseScenario(DefaultScenarioText(),
                          {"model.name=irbnet", "transfer.backbone='bb.pt'", "data.classes='5-9'", "training.batch_size=8"},
                          "default");
  REQUIRE(sc.ok());
  const ModelSpec m = ScenarioModel(sc.value());
  CHECK(m.num_classes == 5);
  CHECK(m.transfer.batch_size == 8);
  CHECK(m.transfer.momentum);
  auto again = ParseScenario(sc->ToToml(), {}, "resolved");  // the resolved scenario loads back the same
  REQUIRE(again.ok());
  CHECK((again->data.classes == std::vector<int>{5, 6, 7, 8, 9}));
  CHECK(again->transfer.backbone == "bb.pt");
}

TEST_CASE("split fields: checked at load, naming the field and what is allowed; they survive the resolved scenario") {
  auto sc = LoadScenario(std::string(EDGEBED_SOURCE_DIR) + "/scenarios/split_inference.toml", {});
  REQUIRE(sc.ok());
  CHECK(sc->is_split());
  CHECK(sc->split.bandwidth.size() == 4);
  CHECK(sc->split.inference.requests == 300);
  auto back = ParseScenario(sc->ToToml(), {}, "resolved");
  REQUIRE(back.ok());
  CHECK(back->ToToml() == sc->ToToml());
  CHECK(back->split.bandwidth[1].kbps == 64.0);
  CHECK(back->split.widths == sc->split.widths);
  const std::string m = "model.name=\"slimsplit\"";
  CHECK(Parse({m}).ok());
  CHECK(Names(Parse({m, "split.widths=[0.5, 0.25]"}), "split.widths must be strictly ascending"));
  CHECK(Names(Parse({m, "split.widths=[0.25, 1.5]"}), "split.widths[1]"));
  CHECK(Names(Parse({m, "split.widths=\"wide\""}), "split.widths must be an array"));
  CHECK(Names(Parse({m, "split.train_width=0.3"}), "split.train_width"));
  CHECK(Names(Parse({m, "split.inference.fixed_width=0.6"}), "split.inference.fixed_width"));
  CHECK(Names(Parse({m, "split.heads=\"mixed\""}), "split.heads"));
  CHECK(Names(Parse({m, "channel.uplink=\"analog_ota\""}), "channel.uplink"));
  CHECK(Names(Parse({m, "split.bandwidth=[{t_s = 1.0, kbps = 5.0}]"}), "split.bandwidth[0].t_s"));
  CHECK(Names(Parse({m, "split.bandwidth=[{t_s = 0.0, kbps = 0.0}]"}), "split.bandwidth[0].kbps"));
  CHECK(Names(Parse({m, "split.bandwidth=[{t_s = 0.0, rate = 5.0}]"}), "split.bandwidth[0].rate"));
  CHECK(Names(Parse({m, "split.inference.deadline_ms=0"}), "split.inference.deadline_ms"));
}

TEST_CASE("gnn fields: checked at load, naming the field and the range; one node per shard; they survive the resolved scenario") {
  auto sc = LoadScenario(std::string(EDGEBED_SOURCE_DIR) + "/scenarios/gnn_pipe.toml", {"gnn.layers=16", "gnn.chunks=8"});
  REQUIRE_MESSAGE(sc.ok(), sc.status().message());
  CHECK(sc->is_gnn());
  CHECK(sc->nodes == sc->gnn.parts);
  CHECK(sc->rounds == sc->gnn.epochs);
  CHECK(sc->gnn.seed == sc->seed);
  auto back = ParseScenario(sc->ToToml(), {}, "resolved");
  REQUIRE_MESSAGE(back.ok(), back.status().message());
  CHECK(back->gnn.layers == 16);
  CHECK(back->gnn.chunks == 8);
  CHECK(back->gnn.graph.vertices == sc->gnn.graph.vertices);
  CHECK(back->gnn.graph.homophily == sc->gnn.graph.homophily);
  const std::string m = "model.name=\"gnn\"";
  CHECK(Names(Parse({m, "gnn.mode=\"ring\""}), "gnn.mode"));
  CHECK(Names(Parse({m, "gnn.layers=0"}), "gnn.layers = 0 is out of range [1, 256]"));
  CHECK(Names(Parse({m, "gnn.layers=2", "gnn.parts=4"}), "gnn.parts = 4 pipeline stages for gnn.layers = 2"));
  CHECK(Names(Parse({m, "gnn.parts=1"}), "gnn.parts = 1 with gnn.mode = \"pipe\""));
  CHECK(Names(Parse({m, "gnn.graph.kind=\"edgelist\""}), "gnn.graph.edges"));
  CHECK(Names(Parse({m, "gnn.mode=\"hybrid\"", "gnn.partitions=1"}), "gnn.partitions = 1 with gnn.mode = \"hybrid\""));
  auto hy = ParseScenario(DefaultScenarioText(), {m, "gnn.mode=\"hybrid\"", "gnn.parts=2", "gnn.partitions=3"}, "t");
  REQUIRE(hy.ok());
  CHECK(hy->nodes == 6);  // one node process per (stage, partition)
  CHECK(Names(Parse({m, "gnn.graph.train_fraction=0.6", "gnn.graph.val_fraction=0.5"}), "gnn.graph.train_fraction + gnn.graph.val_fraction"));
  CHECK(Names(Parse({m, "gnn.graph.homophily=1.5"}), "gnn.graph.homophily"));
  CHECK(Names(Parse({m, "gnn.graph.knn=5"}), "gnn.graph.knn"));  // a typo is an unknown key
  CHECK(Names(Parse({m, "faults.crash=[{node = 2, round = 1}]"}), "node = 2 is out of range [0, 1]"));  // 2 shards
}

namespace {
// Every dotted key of a TOML text's scalar and array fields (tables of tables walked, arrays of
// tables skipped: faults, split.bandwidth and custom profiles are lists, not declared fields).
void Keys(const toml::table& t, const std::string& prefix, std::set<std::string>* out) {
  for (const auto& [k, v] : t) {
    const std::string path = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (const auto* sub = v.as_table()) Keys(*sub, path, out);
    else if (!(v.is_array() && v.as_array()->size() > 0 && v.as_array()->get(0)->is_table())) out->insert(path);
  }
}
std::set<std::string> Keys(const std::string& text) {
  std::set<std::string> out;
  Keys(toml::parse(text), "", &out);
  return out;
}
}  // namespace

TEST_CASE("fields are declared once: default.toml documents every field with the struct's default, and nothing else") {
  const std::string resolved_default = Scenario{}.ToToml();  // the struct's defaults, every declared field
  auto documented = ParseScenario(DefaultScenarioText(), {}, "default.toml");
  REQUIRE(documented.ok());
  // Field by field, so that a drift names its field.
  const auto doc_tbl = toml::parse(documented->ToToml()), def_tbl = toml::parse(resolved_default);
  for (const auto& k : Keys(resolved_default)) {
    std::ostringstream a, b;
    a << def_tbl.at_path(k);
    b << doc_tbl.at_path(k);
    CHECK_MESSAGE(a.str() == b.str(), k, ": struct default ", a.str(), ", default.toml ", b.str());
  }
  const auto declared = Keys(resolved_default), in_doc = Keys(DefaultScenarioText());
  for (const auto& k : declared) CHECK_MESSAGE(in_doc.count(k), k, " is declared but not documented in default.toml");
  for (const auto& k : in_doc) CHECK_MESSAGE(declared.count(k), k, " is documented but not declared");
  CHECK(declared.size() > 100);
}

TEST_CASE("every scenario file's resolved scenario loads back to the same resolved scenario") {
  for (const auto& e : std::filesystem::directory_iterator(std::string(EDGEBED_SOURCE_DIR) + "/scenarios")) {
    if (e.path().extension() != ".toml") continue;
    auto sc = LoadScenario(e.path().string(), {});
    REQUIRE_MESSAGE(sc.ok(), e.path().string());
    auto back = ParseScenario(sc->ToToml(), {}, "resolved");
    REQUIRE_MESSAGE(back.ok(), e.path().filename().string(), ": ", back.status().message());
    CHECK_MESSAGE(back->ToToml() == sc->ToToml(), e.path().filename().string());
  }
}

TEST_CASE("channel ranges are checked in one place, with the field's name; an empty file is refused") {
  CHECK(Names(Parse({"channel.snr_db=61"}), "channel.snr_db = 61 is out of range [-30, 60]"));
  CHECK(Names(Parse({"channel.packet_bytes=8"}), "channel.packet_bytes = 8 must be a multiple of 4 in [16, 65536]"));
  CHECK(Names(Parse({"channel.max_retransmissions=101"}), "channel.max_retransmissions = 101 is out of range [0, 100]"));
  CHECK(Names(Parse({"channel.snr_db=nan"}), "channel.snr_db must be a finite number"));
  const std::string empty = (std::filesystem::temp_directory_path() / "edgebed-empty-scenario.toml").string();
  { std::ofstream(empty) << "# nothing but a comment\n"; }
  CHECK(Names(LoadScenario(empty, {}).status(), "holds no fields"));
  std::filesystem::remove(empty);
}

TEST_CASE("model and data fields for your own module and files: checked at load, and they survive the resolved scenario") {
  CHECK(Names(Parse({"model.name=torchscript"}), "model.name = \"torchscript\" needs model.path"));
  CHECK(Names(Parse({"model.path=m.pt"}), "model.path is set but model.name = \"cnn\""));
  CHECK(Names(Parse({"model.loss=hinge"}), "model.loss = 'hinge' is not allowed; allowed: auto, cross_entropy, mse, module"));
  CHECK(Names(Parse({"data.format=parquet"}), "data.format = 'parquet' is not allowed; allowed: fashion-mnist, idx, cifar10, npz"));
  CHECK(Names(Parse({"data.held_out=0.95"}), "data.held_out = 0.95 is out of range [0, 0.9]"));
  CHECK(Names(Parse({"data.partition=natural"}), "data.partition = natural needs client ids: data.format = \"npz\""));
  CHECK(Names(Parse({"data.std=[0.0]"}), "data.std[0] must be a number in"));
  CHECK(Names(Parse({"training.optimizer=lbfgs"}), "training.optimizer = 'lbfgs' is not allowed; allowed: sgd, adam"));
  CHECK(Names(Parse({"data.classes='5-12'"}), "'5-12' is out of range"));  // Fashion-MNIST has 10 classes
  auto npz = ParseScenario(DefaultScenarioText(),
                           {"model.name=torchscript", "model.path=m.pt", "model.loss=mse", "model.train_flops=3e6",
                            "data.format=npz", "data.train=d.npz", "data.held_out=0.2", "data.mean=[0.5, 0.4, 0.3]",
                            "data.std=[0.2, 0.2, 0.2]", "data.partition=natural", "data.min_samples=20",
                            "data.classes='3,40,41'", "training.optimizer=adam", "training.weight_decay=0.001"},
                           "default");
  REQUIRE_MESSAGE(npz.ok(), npz.status().message());
  auto again = ParseScenario(npz->ToToml(), {}, "resolved");
  REQUIRE(again.ok());
  CHECK(again->torchscript.path == "m.pt");
  CHECK(again->torchscript.loss == "mse");
  CHECK(again->torchscript.train_flops == 3e6);
  CHECK(again->data.format == "npz");
  CHECK(again->data.held_out == doctest::Approx(0.2));
  CHECK(again->data.mean == std::vector<double>{0.5, 0.4, 0.3});
  CHECK(again->data.classes == std::vector<int>{3, 40, 41});  // npz labels may go past 9
  CHECK(again->partition == "natural");
  CHECK(again->min_samples == 20);
  CHECK(again->optimizer == "adam");
  CHECK(again->weight_decay == doctest::Approx(0.001));
}
