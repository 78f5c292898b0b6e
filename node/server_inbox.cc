#include "node/server_inbox.h"

#include <spdlog/spdlog.h>

#include "codecs/wire.h"
#include "codecs/zmq_wire.h"

namespace edgebed {

using Clock = std::chrono::steady_clock;

ServerInbox::ServerInbox(ServerSession& session, ServerInboxOptions opt, wire::Join join)
    : session_(session), opt_(std::move(opt)), join_(std::move(join)) {}

void ServerInbox::SendJoin() {
  const auto now = Clock::now();
  if (last_join_ && now - *last_join_ < std::chrono::seconds(1)) return;  // one join in flight is enough
  last_join_ = now;
  wire::Envelope env;
  env.set_sender(opt_.node_id);
  *env.mutable_join() = join_;
  wire::SendEnvelope(session_.socket(), env, "", /*dont_wait=*/true);
}

void ServerInbox::Leave(const std::string& reason) {
  wire::Envelope bye;
  bye.set_sender(opt_.node_id);
  bye.mutable_leave()->set_reason(reason);
  wire::SendEnvelope(session_.socket(), bye, "", /*dont_wait=*/true);
}

ServerInbox::Got ServerInbox::Next(wire::Envelope* in) {
  for (;;) {
    const auto event = session_.Wait(std::chrono::milliseconds(500));
    if (Stopping()) return Got::kStop;
    if (event == ServerSession::Event::kLost) {
      spdlog::error("{}: lost the server {} and could not reconnect in time; giving up", opt_.node_id,
                    session_.endpoint());
      return Got::kLost;
    }
    if (event == ServerSession::Event::kReconnected) {  // the server may have restarted: join again
      last_join_.reset();
      SendJoin();
    }
    if (event != ServerSession::Event::kMessage) {
      if (std::chrono::duration<double>(Clock::now() - last_heard_).count() > opt_.server_timeout_s) {
        spdlog::error("{}: server {} silent for {:.0f} s; giving up", opt_.node_id, session_.endpoint(),
                      opt_.server_timeout_s);
        return Got::kSilent;
      }
      continue;
    }
    last_heard_ = Clock::now();
    zmq::message_t msg;
    if (!session_.socket().recv(msg, zmq::recv_flags::dontwait)) continue;
    Status st = wire::DecodeFromServer(session_.socket(), msg, opt_.max_frame_bytes, in);
    if (!st.ok()) {
      spdlog::error("{}: dropped a frame from the server: {}", opt_.node_id, st.ToString());
      continue;
    }
    if (in->has_error()) {
      spdlog::error("{}: server error {}: {}", opt_.node_id, wire::ErrorCode_Name(in->error().code()),
                    wire::Printable(in->error().message()));
      // The server does not know this node (it restarted, or declared it failed while this process
      // was stopped): join again under the same identity.
      if (in->error().code() == wire::UNKNOWN_NODE) {
        SendJoin();
        continue;
      }
    }
    return Got::kMessage;
  }
}

}  // namespace edgebed
