// What every end-to-end suite does: run the edgebed binary on a scenario with overrides, and read
// the run's folder (metrics.jsonl rows, summary.json, logs). Header-only, for tests/e2e.
#pragma once
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace edgebed::e2e {

// A fresh path under the temp folder, unique to this test process.
inline std::string TempDir(const std::string& suite, const std::string& tag) {
  return (std::filesystem::temp_directory_path() / ("edgebed-" + suite + "-" + tag + "-" + std::to_string(getpid()))).string();
}

// `edgebed run <scenario> --set output_dir=<out> <extra>` (extra: test-written overrides), output to
// <out>.log; returns the exit code.
inline int RunScenario(const std::string& scenario, const std::string& out, const std::string& extra) {
  const std::string cmd = std::string(EDGEBED_BINARY) + " run " + scenario + " --set output_dir=" + out + " " + extra +
                          " > " + out + ".log 2>&1";
  std::filesystem::remove_all(out);
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline nlohmann::json Summary(const std::string& out) { return nlohmann::json::parse(Slurp(out + "/summary.json")); }

inline std::vector<nlohmann::json> Metrics(const std::string& out) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(out + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

// Removes a run's folder and its log (left in place when a test fails before this, for a look).
inline void Cleanup(const std::string& out) {
  std::filesystem::remove_all(out);
  std::filesystem::remove(out + ".log");
}

}  // namespace edgebed::e2e
