#include "tools/inventory.h"

#include <toml++/toml.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "splitnets/device_profile.h"

namespace edgebed {
namespace fs = std::filesystem;
namespace {

const std::set<std::string> kHostFields = {"ansible_host",    "ansible_port",     "ansible_user",     "ansible_become",
                                           "ansible_ssh_private_key_file",         "ansible_ssh_common_args",
                                           "ansible_python_interpreter",           "edgebed_node",
                                           "edgebed_arch",    "edgebed_profile",  "edgebed_delay_ms", "edgebed_loss_pct",
                                           "edgebed_shape_dev"};
const std::set<std::string> kClusterFields = {"edgebed_scenario", "edgebed_port", "edgebed_work", "edgebed_package_amd64",
                                              "edgebed_package_arm64"};

// A host or address Ansible and ZeroMQ take as it is: letters, digits, '.', '-', '_', ':'.
bool PlainName(const std::string& s) {
  return !s.empty() && s.size() <= 253 && std::all_of(s.begin(), s.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' || c == ':';
         });
}

std::string Resolve(const fs::path& base, const std::string& p) {
  if (p.empty()) return p;
  return fs::path(p).is_absolute() ? p : (base / p).lexically_normal().string();
}

// The newest edgebed_*_ARCH.deb in `dir`, or "".
std::string FindPackage(const fs::path& dir, const std::string& arch) {
  std::string best;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("edgebed_", 0) == 0 && n.size() > arch.size() + 4 && n.substr(n.size() - arch.size() - 4) == arch + ".deb")
      best = std::max(best, e.path().string());
  }
  return best;
}

class HostReader {
 public:
  HostReader(const std::string& file, const std::string& host) : where_(file + ": host '" + host + "'") {}

  Status Number(const toml::table& t, const char* key, double lo, double hi, double* out) const {
    const auto* v = t.get(key);
    if (!v) return Status::Ok();
    const auto d = v->value<double>();
    if (!d || !(*d >= lo && *d <= hi))
      return Status::InvalidArgument(where_ + ": " + key + " must be a number in [" + Fmt(lo) + ", " + Fmt(hi) + "]");
    *out = *d;
    return Status::Ok();
  }
  Status Text(const toml::table& t, const char* key, std::string* out) const {
    const auto* v = t.get(key);
    if (!v) return Status::Ok();
    if (!v->is_string()) return Status::InvalidArgument(where_ + ": " + key + " must be a string");
    *out = **v->as_string();
    return Status::Ok();
  }
  Status Error(const std::string& what) const { return Status::InvalidArgument(where_ + ": " + what); }

 private:
  static std::string Fmt(double v) {
    std::ostringstream s;
    s << v;
    return s.str();
  }
  std::string where_;
};

Status ReadHost(const std::string& file, const std::string& group, const std::string& name, const toml::table& t,
                const Scenario& sc, InventoryHost* h) {
  HostReader r(file, name);
  h->name = name;
  h->role = group == "server" ? "server" : "node";
  if (!PlainName(name)) return r.Error("the name may hold only letters, digits, '.', '-', '_'");
  for (const auto& [k, v] : t)
    if (!kHostFields.count(std::string(k.str())))
      return r.Error("field '" + std::string(k.str()) + "' is unknown (edgebed fields: edgebed_node, edgebed_arch, "
                     "edgebed_profile, edgebed_delay_ms, edgebed_loss_pct, edgebed_shape_dev)");
  h->address = name;
  EDGEBED_RETURN_IF_ERROR(r.Text(t, "ansible_host", &h->address));
  if (!PlainName(h->address)) return r.Error("ansible_host '" + h->address + "' is not a host name or address");
  EDGEBED_RETURN_IF_ERROR(r.Text(t, "edgebed_arch", &h->arch));
  if (h->arch != "amd64" && h->arch != "arm64") return r.Error("edgebed_arch = '" + h->arch + "'; allowed: amd64, arm64");
  if (h->role == "node") {
    const auto idx = t["edgebed_node"].value<int64_t>();
    if (!idx || *idx < 0 || *idx >= static_cast<int64_t>(sc.nodes))
      return r.Error("edgebed_node must be a node index in [0, " + std::to_string(sc.nodes - 1) +
                     "] (federation.nodes = " + std::to_string(sc.nodes) + ")");
    h->node_index = static_cast<uint32_t>(*idx);
  } else if (t.contains("edgebed_node")) {
    return r.Error("edgebed_node is for hosts of the nodes group");
  }
  EDGEBED_RETURN_IF_ERROR(r.Text(t, "edgebed_profile", &h->profile));
  if (!h->profile.empty()) {
    const auto custom = sc.custom_profiles.find(h->profile);
    double uplink = 0.0;
    if (custom != sc.custom_profiles.end()) {
      uplink = custom->second.uplink_bps;
    } else {
      auto ready = ReadyProfile(h->profile);
      if (!ready.ok()) {
        std::string names;
        for (const auto& n : ReadyProfileNames()) names += (names.empty() ? "" : ", ") + n;
        for (const auto& [n, p] : sc.custom_profiles) names += ", " + n;
        return r.Error("edgebed_profile '" + h->profile + "' is unknown; known profiles: " + names);
      }
      uplink = ready->uplink_bps;
    }
    h->link.rate_bps = uplink;
  }
  EDGEBED_RETURN_IF_ERROR(r.Number(t, "edgebed_delay_ms", 0.0, 10000.0, &h->link.delay_ms));
  EDGEBED_RETURN_IF_ERROR(r.Number(t, "edgebed_loss_pct", 0.0, 100.0, &h->link.loss_pct));
  EDGEBED_RETURN_IF_ERROR(r.Text(t, "edgebed_shape_dev", &h->link.dev));
  if (!h->link.dev.empty() && !PlainName(h->link.dev)) return r.Error("edgebed_shape_dev is not an interface name");
  return Status::Ok();
}

}  // namespace

Result<Inventory> ReadInventory(const std::string& path, const std::string& source_dir) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    std::ostringstream m;
    m << path << ":" << e.source().begin.line << ":" << e.source().begin.column << ": " << e.description();
    return Status::InvalidArgument(m.str());
  }
  Inventory inv;
  inv.path = path;
  const fs::path base = fs::absolute(path).parent_path();
  const toml::table* vars = root["all"]["vars"].as_table();
  if (!vars) return Status::InvalidArgument(path + ": [all.vars] with edgebed_scenario is missing");
  for (const auto& [k, v] : *vars) {
    const std::string key(k.str());
    if (key.rfind("edgebed_", 0) == 0 && !kClusterFields.count(key))
      return Status::InvalidArgument(path + ": all.vars." + key + " is unknown; edgebed's cluster fields: edgebed_scenario, "
                                     "edgebed_port, edgebed_work, edgebed_package_amd64, edgebed_package_arm64");
  }
  const auto scenario = (*vars)["edgebed_scenario"].value<std::string>();
  if (!scenario) return Status::InvalidArgument(path + ": all.vars.edgebed_scenario (the scenario file) is missing");
  inv.scenario_path = Resolve(base, *scenario);
  auto sc = LoadScenario(inv.scenario_path, {});
  if (!sc.ok()) return Status::InvalidArgument(path + ": all.vars.edgebed_scenario: " + sc.status().message());
  inv.scenario = std::move(sc).value();
  if (inv.scenario.simulated > 0 || inv.scenario.model == "gnn" || inv.scenario.is_split())
    return Status::InvalidArgument(path + ": the scenario " + inv.scenario_path + " needs simulated nodes, split learning or "
                                   "GNN shards; `edgebed deploy` serves federated runs of real nodes only");
  const auto port = (*vars)["edgebed_port"].value<int64_t>();
  if ((*vars).contains("edgebed_port") && (!port || *port < 1 || *port > 65535))
    return Status::InvalidArgument(path + ": all.vars.edgebed_port must be a port in [1, 65535]");
  if (port) inv.port = static_cast<uint16_t>(*port);
  inv.work_dir = Resolve(base, (*vars)["edgebed_work"].value_or(fs::path(path).stem().string() + "-deploy"));
  inv.package_amd64 = Resolve(base, (*vars)["edgebed_package_amd64"].value_or(std::string()));
  inv.package_arm64 = Resolve(base, (*vars)["edgebed_package_arm64"].value_or(std::string()));
  if (inv.package_amd64.empty()) inv.package_amd64 = FindPackage(fs::path(source_dir) / "build", "amd64");
  if (inv.package_arm64.empty()) inv.package_arm64 = FindPackage(fs::path(source_dir) / "build-arm64", "arm64");

  for (const auto& [g, node] : root) {
    const std::string group(g.str());
    if (group != "all" && group != "server" && group != "nodes")
      return Status::InvalidArgument(path + ": group '" + group + "' is unknown; edgebed's groups: server, nodes (and all.vars)");
  }
  std::map<uint32_t, std::string> by_index;
  std::map<std::string, std::string> by_address;
  InventoryHost server;
  size_t servers = 0;
  std::vector<InventoryHost> nodes;
  for (const char* group : {"server", "nodes"}) {
    const toml::table* hosts = root[group]["hosts"].as_table();
    if (!hosts) continue;
    for (const auto& [n, t] : *hosts) {
      const std::string name(n.str());
      if (!t.is_table()) return Status::InvalidArgument(path + ": " + group + ".hosts." + name + " must be a table of fields");
      InventoryHost h;
      EDGEBED_RETURN_IF_ERROR(ReadHost(path, group, name, *t.as_table(), inv.scenario, &h));
      if (h.role == "node") {
        if (auto [it, fresh] = by_index.emplace(*h.node_index, name); !fresh)
          return Status::InvalidArgument(path + ": hosts '" + it->second + "' and '" + name + "' are both node " +
                                         h.node_name() + " (edgebed_node = " + std::to_string(*h.node_index) + ")");
        if (auto [it, fresh] = by_address.emplace(h.address, name); !fresh)
          return Status::InvalidArgument(path + ": hosts '" + it->second + "' and '" + name + "' have the same address " +
                                         h.address + "; one node per host");
        nodes.push_back(std::move(h));
      } else {
        ++servers;
        server = std::move(h);
      }
    }
  }
  if (servers != 1)
    return Status::InvalidArgument(path + ": the server group holds " + std::to_string(servers) + " hosts; it needs exactly 1");
  if (nodes.empty()) return Status::InvalidArgument(path + ": the nodes group holds no host");
  if (nodes.size() != inv.scenario.nodes) {
    std::string missing;
    for (uint32_t k = 0; k < inv.scenario.nodes && missing.size() < 60; ++k)
      if (!by_index.count(k)) missing += (missing.empty() ? "" : ", ") + std::to_string(k);
    return Status::InvalidArgument(path + ": federation.nodes = " + std::to_string(inv.scenario.nodes) + " in " +
                                   inv.scenario_path + ", but the inventory has " + std::to_string(nodes.size()) +
                                   " nodes (no host for node index " + missing + ")");
  }
  std::sort(nodes.begin(), nodes.end(), [](const auto& a, const auto& b) { return *a.node_index < *b.node_index; });
  inv.hosts.push_back(std::move(server));
  for (auto& h : nodes) inv.hosts.push_back(std::move(h));
  for (const auto& h : inv.hosts) {
    const std::string& pkg = inv.package_for(h.arch);
    if (pkg.empty() || !fs::exists(pkg))
      return Status::NotFound(path + ": host '" + h.name + "' is " + h.arch + ", and there is no " + h.arch + " package (" +
                              (pkg.empty() ? "none found; build it with tools/package" + std::string(h.arch == "arm64" ? " --arm64" : "") +
                                                 " or set all.vars.edgebed_package_" + h.arch
                                           : pkg + " does not exist") + ")");
  }
  return inv;
}

}  // namespace edgebed
