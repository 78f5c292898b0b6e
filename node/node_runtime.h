// The edge node process: joins a server over ZeroMQ, prepares its data share, and answers the
// server's instructions (train, evaluate, shut down) until the run ends. Simulated and real nodes
// (a Raspberry Pi) run this same code; only --connect differs.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>

#include "codecs/curve.h"

namespace edgebed {

struct NodeOptions {
  std::string server = "tcp://127.0.0.1:5555";
  uint32_t index = 0;           // selects the data partition
  std::string node_id;          // empty = "node-<index>"
  std::string data_dir;         // empty = default Fashion-MNIST location
  std::string partition_file;   // this node's rows alone (`edgebed partition`); empty = read the data files
  std::string state_dir;        // what the node carries across rounds (digital OTA's error, SCAFFOLD's
                                // c_i) survives a restart in <state_dir>/<id>.carry; empty = memory only
  std::string device = "x86_64 process";
  int threads = 1;              // libtorch intra-op threads
  double server_timeout_s = 900.0;  // exit with an error when the server is silent this long
  double reconnect_timeout_s = 120.0;  // after the connection to the server is lost, retry (backoff
                                       // 0.1 s doubling to 5 s) this long, then exit with an error
  double heartbeat_s = 1.0;     // sign-of-life period while training
  std::string peer_bind = "tcp://127.0.0.1:*";  // GNN shards: where this node listens for its peers
  CurveOptions curve;           // --key, --server-key: CURVE to the server
  const std::atomic<bool>* stop = nullptr;  // set (SIGTERM, systemctl stop): leave the federation and exit 0
};

// Runs until the server says shutdown (returns 0) or something fatal happens (returns 1).
int RunNode(const NodeOptions& opt);

}  // namespace edgebed
