// What a single node's loop (federated trainer, split-learning encoder, GNN shard) takes from its
// server: the next message, with the link's care taken in one place. A link that comes back after a
// loss, or an UNKNOWN_NODE from the server (it restarted, resumed from its checkpoint, or declared
// this node failed while it was stopped), sends the node's join again; a stop signal, a link lost
// for longer than reconnect_timeout_s and a server silent for server_timeout_s end the wait with
// their reason. The caller handles every message, join_acks included (a join_ack of the same run
// after a rejoin: carry on; of another run: the process belongs to a run that is gone).
#pragma once
#include <atomic>
#include <chrono>
#include <optional>
#include <string>

#include "codecs/edgebed.pb.h"
#include "node/server_session.h"

namespace edgebed {

struct ServerInboxOptions {
  std::string node_id;
  double server_timeout_s = 900.0;          // silence this long ends the node
  size_t max_frame_bytes = 0;               // frames from the server are decoded up to this size
  const std::atomic<bool>* stop = nullptr;  // set by SIGTERM/SIGINT: the wait ends with kStop
};

class ServerInbox {
 public:
  enum class Got { kMessage, kStop, kLost, kSilent };

  // `join` is what the node sends to (re)join: its id, index, device and role.
  ServerInbox(ServerSession& session, ServerInboxOptions opt, wire::Join join);
  ServerInbox(const ServerInbox&) = delete;
  ServerInbox& operator=(const ServerInbox&) = delete;

  // Waits for the next decodable message from the server (frames that do not decode are logged and
  // dropped). kStop, kLost and kSilent are logged here, with the server's address.
  Got Next(wire::Envelope* in);
  // Sends the join (at most one per second is in flight).
  void SendJoin();
  // A graceful leave: the server hears why, not a lost connection.
  void Leave(const std::string& reason);
  bool Stopping() const { return opt_.stop && opt_.stop->load(); }
  zmq::socket_t& socket() { return session_.socket(); }

 private:
  ServerSession& session_;
  ServerInboxOptions opt_;
  wire::Join join_;
  std::optional<std::chrono::steady_clock::time_point> last_join_;
  std::chrono::steady_clock::time_point last_heard_ = std::chrono::steady_clock::now();
};

}  // namespace edgebed
