// `edgebed deploy` and `edgebed partition`: a federation on real machines. deploy checks the
// inventory (tools/inventory.h), prepares on the controller what each host needs (keys, its data
// partition, /etc/edgebed files, the package of its architecture), runs the Ansible playbook
// tools/deploy/ansible/deploy.yml (ansible-playbook, no shell), then follows the run and fetches its
// folder back.
#pragma once
#include <string>

#include "scenarios/scenario.h"

namespace edgebed {

struct DeployOptions {
  std::string inventory;
  std::string playbook_dir;   // empty = the source tree's tools/deploy/ansible, else /usr/share/edgebed/ansible
  bool prepare_only = false;  // check and prepare the work folder; do not run Ansible
  bool follow = true;         // after deploying, follow the run until it ends and fetch its folder
  double poll_s = 10.0;       // follow: how often the server is asked for progress
};

int RunDeploy(const DeployOptions& opt);

// Writes DIR/node-K.npz for every node of `sc` (its rows alone, `edgebed node --partition`); a file
// already there with the right stamp is kept. Errors name the file.
[[nodiscard]] Status CutPartitions(const Scenario& sc, const std::string& dir);
int RunPartition(const Scenario& sc, const std::string& dir);

}  // namespace edgebed
