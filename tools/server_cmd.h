// `edgebed server`: the parameter server as its own process (a deployment's, or one `edgebed run`
// starts): its log file, signals, keys, resume, endpoint file.
#pragma once
#include <string>

#include "scenarios/scenario.h"
#include "tools/keys.h"

namespace edgebed {

// Returns the exit code: 0 for a complete run, 1 for one that failed or stopped, 2 for a refusal
// before the run (bad keys, an address that needs keys, an unwritable output folder).
int RunServerCommand(const Scenario& sc, const KeyFlags& keys, const std::string& resume_dir, const std::string& endpoint_file);

}  // namespace edgebed
