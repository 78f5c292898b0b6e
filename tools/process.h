// Child processes started without a shell (posix_spawn): the launcher's server and nodes, the
// benchmarks' reference processes. No argument is ever parsed by a shell.
#pragma once
#include <sys/types.h>

#include <string>
#include <vector>

namespace edgebed {

// Starts `args` (args[0] a path) with stdout/stderr sent to `log` (empty = inherit). Returns the pid or -1
// (after logging why).
pid_t Spawn(const std::vector<std::string>& args, const std::string& log);

// Starts `args` with stdout/stderr into a pipe whose read end (close-on-exec) goes to *read_fd.
pid_t SpawnToPipe(const std::vector<std::string>& args, int* read_fd);

// Reaps `pid` if it has exited; returns its exit code (128 + signal if killed), or -1 while it runs.
int TryReap(pid_t pid);

// Waits for `pid` and returns its exit code as TryReap does.
int WaitExit(pid_t pid);

}  // namespace edgebed
