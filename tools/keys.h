// `edgebed keys` and the key flags every process that talks over the network takes.
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "codecs/curve.h"

namespace edgebed {

struct KeyFlags {
  std::string key, server_key, allow;
  bool insecure = false;
};

// --key, and --server-key for a process that connects to the server, --allow and --insecure for one
// that accepts connections.
void AddKeyFlags(CLI::App* cmd, KeyFlags* f, bool accepts_connections, bool connects);
// Reads the files the flags name; errors name the flag and the file.
[[nodiscard]] Result<CurveOptions> LoadKeyFlags(const KeyFlags& f, bool accepts_connections);

// Writes DIR/NAME.key and DIR/NAME.pub for each of `names` ("NAME" or "NAME=LABEL": LABEL a node
// name, node-A..node-B or *relay*), and appends every name but "server" to DIR/nodes.allow.
int RunKeys(const std::string& dir, const std::vector<std::string>& names);

}  // namespace edgebed
