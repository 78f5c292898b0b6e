#include "tools/proc_memory.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <vector>

namespace edgebed {
namespace {

// Parent pid from /proc/<pid>/stat (the command name in parentheses may hold spaces: read after
// the last ')').
pid_t ParentOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  if (!std::getline(in, s)) return -1;
  const size_t close = s.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(s.substr(close + 1));
  char state = 0;
  pid_t ppid = -1;
  rest >> state >> ppid;
  return ppid;
}

std::string CommandLine(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// argv[1] (argv[1] argv[2] for `bench ...`); argv[0] if there is no argument.
std::string RoleOf(const std::string& cmdline) {
  std::vector<std::string> args;
  std::istringstream in(cmdline);
  for (std::string a; std::getline(in, a, '\0') && args.size() < 3;) args.push_back(a);
  if (args.size() < 2) return args.empty() ? "?" : args[0];
  return args[1] == "bench" && args.size() > 2 ? "bench " + args[2] : args[1];
}

std::vector<pid_t> Descendants(pid_t root) {
  std::vector<std::pair<pid_t, pid_t>> all;  // (pid, ppid)
  if (DIR* d = opendir("/proc")) {
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
      const pid_t pid = static_cast<pid_t>(std::stol(name));
      all.emplace_back(pid, ParentOf(pid));
    }
    closedir(d);
  }
  std::set<pid_t> tree = {root};
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& [pid, ppid] : all)
      if (tree.count(ppid) && tree.insert(pid).second) grew = true;
  }
  tree.erase(root);
  return {tree.begin(), tree.end()};
}

}  // namespace

bool ReadProcessMemory(pid_t pid, ProcessMemory* out) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  if (!in) return false;
  bool any = false;
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::string key;
    double kib = 0;
    f >> key >> kib;
    if (key == "VmHWM:") out->peak_rss_mib = kib / 1024.0, any = true;
    if (key == "RssAnon:") out->peak_anon_mib = kib / 1024.0;
    if (key == "RssFile:") out->peak_file_mib = kib / 1024.0;
  }
  return any;  // a zombie has no VmHWM
}

DescendantSampler::DescendantSampler(double period_ms) : period_ms_(period_ms) {
  thread_ = std::thread([this] {
    while (!stop_) {
      Sample();
      std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(period_ms_));
    }
  });
}

DescendantSampler::~DescendantSampler() { (void)Stop(); }

void DescendantSampler::Sample() {
  static const std::string self = CommandLine(getpid());
  for (pid_t pid : Descendants(getpid())) {
    // A child between fork and exec still has this process's memory and command line: not yet its own.
    const std::string cmdline = CommandLine(pid);
    ProcessMemory now;
    if (cmdline.empty() || cmdline == self || !ReadProcessMemory(pid, &now)) continue;
    std::lock_guard<std::mutex> lock(mu_);
    auto [it, fresh] = seen_.try_emplace(pid, now);
    ProcessMemory& m = it->second;
    if (fresh) m.role = RoleOf(cmdline);
    m.peak_rss_mib = std::max(m.peak_rss_mib, now.peak_rss_mib);
    m.peak_anon_mib = std::max(m.peak_anon_mib, now.peak_anon_mib);
    m.peak_file_mib = std::max(m.peak_file_mib, now.peak_file_mib);
  }
}

std::map<pid_t, ProcessMemory> DescendantSampler::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  return seen_;
}

}  // namespace edgebed
