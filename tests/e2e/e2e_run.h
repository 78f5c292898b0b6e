// What every end-to-end suite does: run the edgebed binary on a scenario with overrides, and read
// the run's folder (metrics.jsonl rows, summary.json, logs). Header-only, for tests/e2e.
#pragma once
#include <doctest/doctest.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

extern "C" char** environ;

namespace edgebed::e2e {

// Starts argv (no shell; argv[0] found on PATH) with stdout and stderr appended to `log`; returns the pid.
inline pid_t Start(const std::vector<std::string>& args, const std::string& log) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  REQUIRE(rc == 0);
  return pid;
}

// Waits for `pid`; its exit code, or 128 + the signal that ended it.
inline int Wait(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Runs argv to its end (no shell), output appended to `log`; its exit code.
inline int RunArgs(const std::vector<std::string>& args, const std::string& log) { return Wait(Start(args, log)); }

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

// The comma-separated fields of one CSV line (edgebed's CSVs quote nothing).
inline std::vector<std::string> CsvFields(const std::string& line) {
  std::vector<std::string> f;
  std::stringstream ss(line);
  for (std::string x; std::getline(ss, x, ',');) f.push_back(x);
  return f;
}

inline nlohmann::json Summary(const std::string& out) { return nlohmann::json::parse(Slurp(out + "/summary.json")); }

inline std::vector<nlohmann::json> Metrics(const std::string& out) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(out + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

// `page` (an HTML file) opened by headless Chromium (Debian's chromium package): the DOM after the
// page's load handler ran. Its own profile folder, so that parallel tests do not share one.
inline std::string RenderInChromium(const std::string& page) {
  const std::string profile = page + ".chromium-profile", dom = page + ".dom";
  std::filesystem::remove(dom);
  const pid_t pid = Start({"timeout", "120", "chromium", "--headless", "--no-sandbox", "--disable-gpu",
                           "--user-data-dir=" + profile, "--virtual-time-budget=5000", "--dump-dom",
                           "file://" + std::filesystem::absolute(page).string()},
                          dom);
  Wait(pid);
  std::filesystem::remove_all(profile);
  return Slurp(dom);
}

// The page (report.html, compare.html) renders in Chromium with every figure laid out and drawn,
// the ones in `keys` among them.
inline void CheckPage(const std::string& page, const std::vector<std::string>& keys) {
  REQUIRE_MESSAGE(std::filesystem::exists(page), page);
  const std::string dom = RenderInChromium(page);
  const size_t body = dom.find("<body");
  REQUIRE_MESSAGE(body != std::string::npos, dom.substr(0, 2000));
  const std::string tag = dom.substr(body, dom.find('>', body) - body);
  const size_t f = tag.find("data-figures=\""), r = tag.find("data-rendered=\"");
  REQUIRE_MESSAGE((f != std::string::npos && r != std::string::npos), tag);
  const int figures = std::stoi(tag.substr(f + 14)), rendered = std::stoi(tag.substr(r + 15));
  CHECK(figures >= static_cast<int>(keys.size()));
  CHECK_MESSAGE(rendered == figures, tag);
  for (const auto& k : keys)
    CHECK_MESSAGE(dom.find("data-figure=\"" + k + "\" data-rendered=\"yes\"") != std::string::npos, "figure ", k, " in ", page);
  std::filesystem::remove(page + ".dom");
}

inline void CheckReport(const std::string& out, const std::vector<std::string>& keys) { CheckPage(out + "/report.html", keys); }

// Removes a run's folder and its log (left in place when a test fails before this, for a look).
inline void Cleanup(const std::string& out) {
  std::filesystem::remove_all(out);
  std::filesystem::remove(out + ".log");
}

}  // namespace edgebed::e2e
