// A cluster inventory: an Ansible inventory written in TOML (Ansible's toml plugin reads the same
// file), checked by edgebed before anything is deployed. Groups: `server` (one host) and `nodes`
// (one edge node per host). Host fields: ansible_host (the address), edgebed_node (node index),
// edgebed_arch (amd64 | arm64), edgebed_profile (a device profile: the host's uplink is shaped to it
// with tc), edgebed_delay_ms and edgebed_loss_pct (netem on top), edgebed_shape_dev (interface).
// Cluster fields in [all.vars]: edgebed_scenario, edgebed_port, edgebed_work, edgebed_package_amd64,
// edgebed_package_arm64. Errors name the file, the host and the field.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "codecs/status.h"
#include "scenarios/scenario.h"

namespace edgebed {

// How a host's uplink is shaped (tc on its interface); rate 0 = not shaped.
struct LinkShape {
  double rate_bps = 0.0;
  double delay_ms = 0.0;
  double loss_pct = 0.0;
  std::string dev;  // empty = the host's default-route interface
  bool shaped() const { return rate_bps > 0.0 || delay_ms > 0.0 || loss_pct > 0.0; }
};

struct InventoryHost {
  std::string name;     // the inventory's host name
  std::string address;  // ansible_host, else the name
  std::string role;     // server | node
  std::string arch = "arm64";
  std::optional<uint32_t> node_index;  // nodes: edgebed_node
  std::string profile;  // "" = not shaped
  LinkShape link;
  std::string node_name() const { return "node-" + std::to_string(node_index.value_or(0)); }
};

struct Inventory {
  std::string path;
  std::string scenario_path;
  Scenario scenario;
  uint16_t port = 5555;
  std::string work_dir;  // controller: keys, partitions, env files, the fetched run
  std::string package_amd64, package_arm64;
  std::vector<InventoryHost> hosts;  // the server first, then the nodes by index
  const InventoryHost& server() const { return hosts.front(); }
  const std::string& package_for(const std::string& arch) const { return arch == "amd64" ? package_amd64 : package_arm64; }
};

// Reads and checks `path`: one server, nodes with distinct indices covering federation.nodes, known
// profiles and architectures, the package of every architecture in use, the scenario. `source_dir`
// resolves the default package paths (build/, build-arm64/).
[[nodiscard]] Result<Inventory> ReadInventory(const std::string& path, const std::string& source_dir);

}  // namespace edgebed
