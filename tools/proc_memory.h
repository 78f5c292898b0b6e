// Memory of this process's descendants, sampled from /proc: each process's peak resident set
// (the kernel's VmHWM, exact) and peak anonymous memory (RssAnon, the highest sample: the kernel
// keeps no high-water mark for it). What `bench memory` reports for every process of a run.
#pragma once
#include <sys/types.h>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace edgebed {

struct ProcessMemory {
  std::string role;          // argv[1]: server, node, nodehost, channel, bench (the floor), ...
  double peak_rss_mib = 0;   // VmHWM at the last sample
  double peak_anon_mib = 0;  // highest RssAnon sampled
  double peak_file_mib = 0;  // highest RssFile sampled (shared library pages, reclaimable)
};

// One process's current figures from /proc/<pid>/status; false if it has gone.
bool ReadProcessMemory(pid_t pid, ProcessMemory* out);

class DescendantSampler {
 public:
  explicit DescendantSampler(double period_ms = 10.0);
  DescendantSampler(const DescendantSampler&) = delete;  // owns a thread
  DescendantSampler& operator=(const DescendantSampler&) = delete;
  ~DescendantSampler();

  // Stops sampling and returns every descendant seen, by pid.
  std::map<pid_t, ProcessMemory> Stop();

 private:
  void Sample();

  const double period_ms_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::map<pid_t, ProcessMemory> seen_;
  std::thread thread_;
};

}  // namespace edgebed
