// `bench memory` samples its children from /proc (tools/proc_memory.h). Here it samples `bench
// floor`, which also reports its own figures from inside: the two must agree.
#include <doctest/doctest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/e2e/e2e_run.h"
#include "tools/proc_memory.h"

TEST_CASE("the descendant sampler sees a child's own peak RSS and anonymous memory, under its command's name") {
  const std::string log = edgebed::e2e::TempDir("bench_memory", "floor") + ".log";
  std::filesystem::remove(log);
  std::map<pid_t, edgebed::ProcessMemory> seen;
  int rc = -1;
  {
    edgebed::DescendantSampler sampler(5.0);
    rc = edgebed::e2e::Wait(edgebed::e2e::Start({EDGEBED_BINARY, "bench", "floor"}, log));
    seen = sampler.Stop();
  }
  REQUIRE(rc == 0);
  const std::string out = edgebed::e2e::Slurp(log);
  const auto brace = out.rfind('{');
  REQUIRE(brace != std::string::npos);
  const auto inside = nlohmann::json::parse(out.substr(brace));
  const edgebed::ProcessMemory* floor = nullptr;
  int named = 0;
  for (const auto& [pid, m] : seen)
    if (m.role == "bench floor") floor = &m, ++named;
  REQUIRE_MESSAGE(named == 1, named << " processes named 'bench floor' among " << seen.size());
  // VmHWM is the kernel's high-water mark: what the child read at its end is what the sampler read last.
  CHECK(floor->peak_rss_mib == doctest::Approx(inside["peak_rss_mib"].get<double>()).epsilon(0.01));
  // Anonymous memory: the sampler keeps the highest sample, so at least what the child ended with
  // (less one sample's page-level jitter), and never above the peak resident set.
  CHECK(floor->peak_anon_mib >= inside["anon_mib"].get<double>() - 0.5);
  CHECK(floor->peak_anon_mib <= floor->peak_rss_mib);
  CHECK(floor->peak_anon_mib > 10.0);  // libtorch's registrations alone are tens of MiB
}
