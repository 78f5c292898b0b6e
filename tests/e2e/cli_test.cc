// One CLI convention: `edgebed help [command]`, defaults in every command's help, the scenario given
// the same way (positional, --scenario kept as an alias) on every command that takes one.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/e2e/e2e_run.h"

using edgebed::e2e::Slurp;
using edgebed::e2e::Start;
using edgebed::e2e::Wait;

namespace {

// `edgebed args...`: its exit code and what it printed.
std::pair<int, std::string> Edgebed(const std::vector<std::string>& args) {
  const std::string log = edgebed::e2e::TempDir("cli", "out") + ".log";
  std::filesystem::remove(log);
  std::vector<std::string> argv = {EDGEBED_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  const int rc = Wait(Start(argv, log));
  std::string out = Slurp(log);
  std::filesystem::remove(log);
  return {rc, out};
}

}  // namespace

TEST_CASE("edgebed help lists the commands; help COMMAND [SUBCOMMAND] is that command's help; a wrong one is named") {
  const auto [rc, all] = Edgebed({"help"});
  CHECK(rc == 0);
  for (const char* cmd : {"run", "server", "node", "nodehost", "channel", "sweep", "compare", "report,", "bench", "deploy",
                          "scenario", "help"})
    CHECK_MESSAGE(all.find("\n  " + std::string(cmd) + " ") != std::string::npos, cmd);
  CHECK(all.find("--set section.field=value") != std::string::npos);  // --set is documented once, at the top
  const auto [rc2, nmse] = Edgebed({"help", "ota", "nmse"});
  CHECK(rc2 == 0);
  CHECK(nmse.find("Usage: edgebed ota nmse") != std::string::npos);
  const auto [rc3, bad] = Edgebed({"help", "ota", "bogus"});
  CHECK(rc3 == 2);
  CHECK(bad.find("'bogus' is not a command of 'edgebed ota'") != std::string::npos);
}

TEST_CASE("every command's help shows its options' defaults") {
  // One option with a non-empty default per command, and the default its help must show.
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"help", "ota", "nmse"}, "--d UINT:INT in [2 - 4096]=64"},
      {{"help", "sweep"}, "--x TEXT=round"},
      {{"help", "bench"}, "--population-rounds INT=20"},
      {{"help", "ota", "train"}, "--seed UINT=1"},
      {{"help", "transfer", "compare"}, "--epochs INT:INT in [1 - 1000]=3"},
      {{"help", "split", "compare"}, "--epochs INT:INT in [1 - 1000]=4"},
      {{"help", "gnn", "compare"}, "--layers UINT=[8,16]"},
      {{"help", "node"}, "--connect TEXT=tcp://127.0.0.1:5555"},
      {{"help", "nodehost"}, "--count UINT:INT in [1 - 1000000]=1"},
      {{"help", "channel"}, "--listen TEXT=tcp://127.0.0.1:0"},
      {{"help", "deploy"}, "--poll-s FLOAT:FLOAT in [1 - 3600]=10"},
      {{"help", "compare"}, "--out TEXT=runs/compare"},
  };
  for (const auto& [args, want] : cases) {
    const auto [rc, text] = Edgebed(args);
    CAPTURE(args.back());
    CHECK(rc == 0);
    CHECK_MESSAGE(text.find(want) != std::string::npos, text);
  }
}

TEST_CASE("the scenario is positional on every command that takes one, with --scenario kept as an alias") {
  for (const char* cmd : {"run", "server", "nodehost", "channel", "sweep", "partition", "scenario"}) {
    const auto [rc, text] = Edgebed({"help", cmd});
    CAPTURE(cmd);
    CHECK(rc == 0);
    CHECK(text.find("Positionals:\n  scenario ") != std::string::npos);
  }
  // The same file given both ways resolves to the same scenario.
  const std::string quick = std::string(EDGEBED_SOURCE_DIR) + "/scenarios/quick.toml";
  const auto [rc1, positional] = Edgebed({"scenario", quick});
  CHECK(rc1 == 0);
  const auto [rc2, missing] = Edgebed({"server", "/nonexistent/scenario.toml"});
  CHECK(rc2 != 0);
  CHECK(missing.find("/nonexistent/scenario.toml") != std::string::npos);
  CHECK(positional.find("name = 'quick'") != std::string::npos);
}

TEST_CASE("ota nmse makes the paper's synthetic setting itself: the popularity exponent is an option, seeded") {
  const std::string out = edgebed::e2e::TempDir("cli", "zipf");
  std::filesystem::remove_all(out);
  const auto [rc, text] = Edgebed({"ota", "nmse", "--zipf", "0.8", "--n", "128", "--d", "64", "--ka-min", "7", "--ka-max", "13",
                                   "--blocks", "250", "--snrs", "20", "--seed", "3", "--out", out});
  REQUIRE_MESSAGE(rc == 0, text);
  CHECK(text.find("Zipf(0.8) popularity over 128 codewords, 40 nodes (seed 3)") != std::string::npos);
  CHECK(edgebed::e2e::Slurp(out + "/nmse.json").find("synthetic, Zipf(0.8), n = 128") != std::string::npos);
  const auto [rc2, bad] = Edgebed({"ota", "nmse", "--zipf", "-1", "--out", out});
  CHECK(rc2 != 0);
  CHECK(bad.find("--zipf") != std::string::npos);
  std::filesystem::remove_all(out);
}

TEST_CASE("ota nmse reports how far the paper's SNR of the sum lies above each node's: the sum's mean power") {
  // Zipf(8) over 128 codewords and K_a = 7: nearly every node sends codeword 0, and the received sum's
  // power over one unit-norm codeword's is E||sum_i x_i c_i||^2 = K + K (K - 1) p^T G p (multinomial
  // counts), with p^T G p = p_0^2 = (1 / sum_k k^-8)^2 to within 0.005 here (the other terms carry
  // p_j <= 0.004). Closed form: 10 log10(7 + 42 p_0^2) = 16.872 dB, +-0.02 dB for those terms and
  // +-0.011 dB (one standard deviation) for 250 blocks.
  const std::string out = edgebed::e2e::TempDir("cli", "sum-power");
  std::filesystem::remove_all(out);
  const auto [rc, text] = Edgebed({"ota", "nmse", "--zipf", "8", "--ka-min", "7", "--ka-max", "7", "--blocks", "250",
                                   "--snrs", "30", "--seed", "5", "--out", out});
  REQUIRE_MESSAGE(rc == 0, text);
  // The column named sum_over_node_snr_db, in AMP-DA's row.
  const std::string csv = Slurp(out + "/nmse.csv");
  const auto header = edgebed::e2e::CsvFields(csv.substr(0, csv.find('\n')));
  const size_t col = std::find(header.begin(), header.end(), "sum_over_node_snr_db") - header.begin();
  REQUIRE(col < header.size());
  const size_t row = csv.find("\n30,amp_da,");
  REQUIRE(row != std::string::npos);
  const auto values = edgebed::e2e::CsvFields(csv.substr(row + 1, csv.find('\n', row + 1) - row - 1));
  REQUIRE(values.size() == header.size());
  const double db = std::stod(values[col]);
  double z = 0.0;
  for (int k = 1; k <= 128; ++k) z += std::pow(k, -8.0);
  CHECK(db == doctest::Approx(10.0 * std::log10(7.0 + 42.0 / (z * z))).epsilon(0.0035));  // 0.06 dB
  std::filesystem::remove_all(out);
}
