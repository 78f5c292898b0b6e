// Authenticated, encrypted links: ZeroMQ CURVE key pairs in files, the allow-list that binds each
// public key to the node names it may join as, and the ZAP handler that admits only those keys.
//
// Files (text, one key per line; a line starting with '#' is a comment; '#' is also a Z85 character,
// so there are no comments after a key):
//   NAME.key   "public <40-char Z85 key>" and "secret <40-char Z85 key>", mode 0600 (refused when
//              group or others may read it, as ssh refuses private keys)
//   NAME.pub   "public <key>"
//   allow-list lines "<public key> <names>": names is one node id ("node-3"), an index range of node
//              ids ("node-100..node-999", a node host's simulated nodes), or "*relay*" (a channel
//              process, which forwards other nodes' frames).
#pragma once
#include <atomic>
#include <memory>
#include <mutex>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "codecs/status.h"

namespace edgebed {

struct CurveKeyPair {
  std::string public_key;  // Z85, 40 characters
  std::string secret_key;  // empty when read from a .pub file
};

// A fresh pair from libzmq (libsodium). Errors when libzmq was built without CURVE.
[[nodiscard]] Result<CurveKeyPair> MakeCurveKeyPair();
// Writes DIR/NAME.key (0600) and DIR/NAME.pub, each replaced whole; refuses to overwrite an existing
// NAME.key. Errors name the file.
[[nodiscard]] Status WriteCurveKeyPair(const std::string& dir, const std::string& name, const CurveKeyPair& pair);
// Reads a .key (need_secret) or .pub file. Errors name the file and the line: missing, malformed,
// not 40 Z85 characters, a secret key file others may read.
[[nodiscard]] Result<CurveKeyPair> ReadCurveKeyFile(const std::string& path, bool need_secret);

// Which node names one key may use.
struct AllowEntry {
  std::string public_key;
  std::string label;          // as written: "node-3", "node-100..node-999", "*relay*"
  bool relay = false;         // a channel process: may carry any allowed node's frames
  std::string prefix;         // "node-" of a range
  uint64_t first = 0, last = 0;  // range bounds (inclusive); a single name has first == last and prefix = the name
  bool range = false;
  bool Permits(const std::string& node_id) const;
};

class AllowList {
 public:
  // Errors name the file and the line: a malformed key, a bad range, a key listed twice, a node name
  // given to two keys.
  [[nodiscard]] static Result<AllowList> Read(const std::string& path);
  // From (public key, node name) pairs already checked by the one who sends them (the server's list
  // of GNN shard keys); each key may join as its one name.
  static AllowList FromPairs(const std::vector<std::pair<std::string, std::string>>& pairs);
  const AllowEntry* Find(const std::string& public_key) const;
  // The entry whose label is `label` (the ZAP User-Id of a connection), or null.
  const AllowEntry* ByLabel(const std::string& label) const;
  size_t size() const { return entries_.size(); }

 private:
  std::vector<AllowEntry> entries_;
};

// Answers ZeroMQ's ZAP requests for every socket of `ctx` that is a CURVE server: keys on the
// allow-list pass with their label as the connection's User-Id; any other key (or mechanism) is
// refused, logged with its public key and address (never a secret), and counted.
class ZapHandler {
 public:
  ZapHandler(zmq::context_t& ctx, AllowList allow);
  ~ZapHandler();
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;
  uint64_t refused() const { return refused_.load(); }
  const AllowList& allow() const { return allow_; }  // not while Reset may run
  // Replaces the keys admitted from now on (GNN shards learn their peers' keys after binding).
  void Reset(AllowList allow);

 private:
  void Serve();
  zmq::socket_t sock_;
  std::mutex mu_;  // allow_ between Serve and Reset
  AllowList allow_;
  std::atomic<uint64_t> refused_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// What one process needs to secure its links, from its command line: its own key pair, the
// allow-list (when it accepts connections), the server's public key (when it connects).
// No own key: CURVE is off.
struct CurveOptions {
  CurveKeyPair own;
  std::string server_public_key;
  std::shared_ptr<const AllowList> allow;
  bool insecure = false;  // --insecure: bind a non-loopback address without keys
  bool enabled() const { return !own.public_key.empty(); }
};

// Reads --key (a .key file), --server-key (a .pub or .key file) and --allow; empty paths are not
// read. Errors name the flag and the file. A key without the other half (e.g. --allow without
// --key) is an error too.
[[nodiscard]] Result<CurveOptions> LoadCurveOptions(const std::string& key_file, const std::string& server_key_file,
                                                    const std::string& allow_file, bool accepts_connections);

// A socket that accepts connections on `endpoint` with `curve`: refused when the address leaves the
// machine and there are no keys, unless curve.insecure. `field` names the setting in the error.
[[nodiscard]] Status CheckBindSecurity(const std::string& field, const std::string& endpoint, const CurveOptions& curve);

// Socket options for each end (set before bind/connect).
void MakeCurveServer(zmq::socket_t& sock, const CurveKeyPair& own);
void MakeCurveClient(zmq::socket_t& sock, const CurveKeyPair& own, const std::string& server_public_key);

// True for tcp:// endpoints on 127.0.0.0/8, localhost, and ipc:// / inproc://: links that do not
// leave the machine and need no keys.
bool IsLoopbackEndpoint(const std::string& endpoint);

}  // namespace edgebed
