// record/: atomic files, checked line files on a full device, gnuplot fed on a pipe with hostile
// text, and the metrics rows kept on resume. server/checkpoint: round trip and every corruption.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "record/files.h"
#include "tests/record/record_test_files.h"
#include "record/plot.h"
#include "record/run_record.h"
#include "server/checkpoint.h"

using namespace edgebed;
namespace fs = std::filesystem;

namespace {

std::string Dir(const std::string& tag) { return record_test::Dir("record", tag); }
using record_test::Slurp;

}  // namespace

TEST_CASE("WriteFileAtomic replaces a file whole, leaves no temporary, and names the file it cannot write") {
  const std::string d = Dir("atomic");
  REQUIRE(WriteFileAtomic(d + "/a.json", "first").ok());
  REQUIRE(WriteFileAtomic(d + "/a.json", "second, longer").ok());
  CHECK(Slurp(d + "/a.json") == "second, longer");
  CHECK(!fs::exists(d + "/a.json.tmp"));
  const Status st = WriteFileAtomic(d + "/no/such/dir/a.json", "x");
  CHECK(st.code() == Status::Code::kIoError);
  CHECK(st.message().find(d + "/no/such/dir/a.json") != std::string::npos);
  fs::remove_all(d);
}

TEST_CASE("LineFile on a full device: the error names the file, says why, and every later append fails too") {
  LineFile f;
  REQUIRE(f.Open("/dev/full", /*append=*/false).ok());
  const Status st = f.Append("a row");
  CHECK(st.code() == Status::Code::kIoError);
  CHECK(st.message().find("/dev/full") != std::string::npos);
  CHECK(st.message().find("No space left on device") != std::string::npos);
  CHECK(f.Append("another").message() == st.message());
  LineFile never_opened;
  CHECK(!never_opened.Append("x").ok());
}

TEST_CASE("RunRecord writes rows to jsonl and csv, and on resume keeps the rows up to the checkpoint's round") {
  const std::string d = Dir("rows");
  {
    RunRecord r;
    REQUIRE(r.Open(d, FederatedCsvColumns()).ok());
    for (int round = 0; round <= 4; ++round)
      REQUIRE(r.WriteRow({{"round", round}, {"test_accuracy", 0.1 * round}, {"participants", 3}}).ok());
  }
  {  // a crash cut the last line in half
    std::ofstream cut(d + "/metrics.jsonl", std::ios::app);
    cut << "{\"round\": 5, \"test_acc";
  }
  RunRecord r;
  REQUIRE(r.Reopen(d, FederatedCsvColumns(), 2).ok());
  REQUIRE(r.WriteRow({{"round", 3}, {"test_accuracy", 0.75}}).ok());
  std::ifstream in(d + "/metrics.jsonl");
  std::vector<int> rounds;
  for (std::string line; std::getline(in, line);) rounds.push_back(nlohmann::json::parse(line)["round"].get<int>());
  CHECK(rounds == std::vector<int>{0, 1, 2, 3});
  const std::string csv = Slurp(d + "/metrics.csv");
  CHECK(csv.rfind("round,test_accuracy,test_loss,participants,", 0) == 0);
  CHECK(csv.find("\n2,0.2") != std::string::npos);
  CHECK(csv.find("\n3,0.75,null,null") != std::string::npos);  // missing fields: null; virtual clock and energy 0
  CHECK(csv.find("\n4,") == std::string::npos);
  REQUIRE(r.WriteSummary({{"status", "complete"}}).ok());
  CHECK(nlohmann::json::parse(Slurp(d + "/summary.json"))["status"] == "complete");
  CHECK(r.Reopen(d + "/missing", FederatedCsvColumns(), 1).message().find(d + "/missing/metrics.jsonl") != std::string::npos);
  fs::remove_all(d);
}

TEST_CASE("gnuplot strings and paths cannot break out of their quotes") {
  CHECK(GnuplotString("it's") == "'it''s'");
  CHECK(GnuplotString("a\nb\tc") == "'a?b?c'");
  CHECK(GnuplotString("`rm -rf ~` $(x) \\ \"q\"") == "'`rm -rf ~` $(x) \\ \"q\"'");
  CHECK(GnuplotPath("rel/x.png").rfind("'/", 0) == 0);  // absolute: never '<cmd' or '|cmd'
  CHECK(GnuplotPath("<touch x").rfind("'/", 0) == 0);
  // A real plot whose title and output folder carry quotes, backquotes and a pipe: drawn, nothing run.
  const std::string d = Dir("plot") + "/o'`touch pwned`|x";
  fs::create_directories(d);
  const std::string script = "set terminal pngcairo size 300,200\nset output " + GnuplotPath(d + "/p.png") +
                             "\nset title " + GnuplotString("x'; system('touch pwned2'); print '") +
                             "\nplot sin(x) title " + GnuplotString("`touch pwned3`") + "\n";
  REQUIRE(RunGnuplot(script, d + "/gnuplot.log").ok());
  CHECK(fs::file_size(d + "/p.png") > 500);
  for (const char* f : {"pwned", "pwned2", "pwned3"}) CHECK_MESSAGE(!fs::exists(f), f);
  CHECK(RunGnuplot("plot nonsense(\n", d + "/bad.log").message().find(d + "/bad.log") != std::string::npos);
  fs::remove_all(fs::path(d).parent_path());
}

TEST_CASE("a checkpoint round-trips and every damage is named") {
  const std::string d = Dir("ckpt");
  ServerCheckpoint c;
  c.round = 7;
  c.run_id = UniqueRunId("quick-7");
  c.seed = 7;
  c.virtual_clock_s = 12.5;
  c.select_rng = "1 2 3";
  c.state = std::string("moments\0\xff", 9);  // bytes, not text
  c.global.specs = {{"w", {2, 3}}, {"b", {3}}};
  c.global.flat = {1, 2, 3, 4, 5, 6, -1, -2, -3.5f};
  REQUIRE(SaveCheckpoint(d, c).ok());
  auto back = LoadCheckpoint(d);
  REQUIRE(back.ok());
  CHECK(back->round == 7);
  CHECK(back->run_id == c.run_id);
  // A run resumes the checkpoint of its name and seed and takes on its id; another name or seed is refused.
  CHECK(c.run_id.rfind("quick-7-", 0) == 0);
  CHECK(c.run_id.size() > std::string("quick-7-20261130T000000Z-1").size() - 1);
  CHECK(LoadCheckpointOf(d, "quick-7", 7).ok());
  CHECK(LoadCheckpointOf(d, "quick-7", 8).status().message().find("seed 7") != std::string::npos);
  CHECK(LoadCheckpointOf(d, "other-7", 7).status().message().find("not to a run of 'other-7'") != std::string::npos);
  CHECK(!LoadCheckpointOf(d, "quick-70", 7).ok());
  CHECK(back->virtual_clock_s == 12.5);
  CHECK(back->select_rng == "1 2 3");
  CHECK(back->state == c.state);
  CHECK(back->global.SameLayout(c.global));
  CHECK(back->global.flat == c.global.flat);

  std::string bytes = Slurp(CheckpointPath(d));
  auto write = [&](const std::string& b) { std::ofstream(CheckpointPath(d), std::ios::binary) << b; };
  std::string flipped = bytes;
  flipped[flipped.size() - 10] ^= 0x40;
  write(flipped);
  CHECK(LoadCheckpoint(d).status().message().find("CRC-32 mismatch") != std::string::npos);
  write(bytes.substr(0, bytes.size() / 2));
  CHECK(LoadCheckpoint(d).status().code() == Status::Code::kCorruption);
  write("not a checkpoint at all");
  CHECK(LoadCheckpoint(d).status().message().find("not an edgebed checkpoint") != std::string::npos);
  fs::remove(CheckpointPath(d));
  CHECK(LoadCheckpoint(d).status().message().find(CheckpointPath(d)) != std::string::npos);
  fs::remove_all(d);
}
