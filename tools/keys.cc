// `edgebed keys`: CURVE key pairs for a deployment, and the server's allow-list that binds each
// node key to the node names it may join as.
#include "tools/keys.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>

#include "codecs/curve.h"
#include "record/files.h"

namespace edgebed {

void AddKeyFlags(CLI::App* cmd, KeyFlags* f, bool accepts_connections, bool connects) {
  cmd->add_option("--key", f->key, "this process's CURVE key pair (NAME.key from edgebed keys); links are then encrypted")
      ->check(CLI::ExistingFile);
  if (connects)
    cmd->add_option("--server-key", f->server_key, "the server's public key (server.pub), with --key")->check(CLI::ExistingFile);
  if (accepts_connections) {
    cmd->add_option("--allow", f->allow, "allow-list of node keys (nodes.allow from edgebed keys), with --key")
        ->check(CLI::ExistingFile);
    cmd->add_flag("--insecure", f->insecure, "accept connections from other machines without keys (a network you trust)");
  }
}

Result<CurveOptions> LoadKeyFlags(const KeyFlags& f, bool accepts_connections) {
  auto c = LoadCurveOptions(f.key, f.server_key, f.allow, accepts_connections);
  if (!c.ok()) return c;
  if (!accepts_connections && c->enabled() && c->server_public_key.empty())
    return Status::InvalidArgument("--key needs --server-key (the server's public key, server.pub)");
  c->insecure = f.insecure;
  return c;
}

int RunKeys(const std::string& dir, const std::vector<std::string>& names) {
  const std::string allow_path = dir + "/nodes.allow";
  std::string lines;
  for (const auto& spec : names) {
    const size_t eq = spec.find('=');
    const std::string name = spec.substr(0, eq), label = eq == std::string::npos ? name : spec.substr(eq + 1);
    auto pair = MakeCurveKeyPair();
    if (!pair.ok()) {
      spdlog::error("{}", pair.status().message());
      return 1;
    }
    if (Status st = WriteCurveKeyPair(dir, name, pair.value()); !st.ok()) {
      spdlog::error("{}", st.message());
      return 1;
    }
    spdlog::info("wrote {0}/{1}.key (secret, 0600) and {0}/{1}.pub", dir, name);
    if (name != "server") lines += pair->public_key + " " + label + "\n";
  }
  if (lines.empty()) return 0;
  std::string before;
  if (std::filesystem::exists(allow_path)) {
    auto old = ReadFile(allow_path);
    if (!old.ok()) {
      spdlog::error("{}", old.status().message());
      return 1;
    }
    before = old.value();
  } else {
    before = "# edgebed allow-list: <public key> <node name | node-A..node-B | *relay*>\n";
  }
  if (Status st = WriteFileAtomic(allow_path, before + lines); !st.ok()) {
    spdlog::error("{}", st.message());
    return 1;
  }
  auto check = AllowList::Read(allow_path);  // a name given to two keys is caught here, naming the line
  if (!check.ok()) {
    spdlog::error("{}", check.status().message());
    return 1;
  }
  spdlog::info("{}: {} keys (give it to the server with --allow; the .key files go to their machines only)", allow_path,
               check->size());
  return 0;
}

}  // namespace edgebed
