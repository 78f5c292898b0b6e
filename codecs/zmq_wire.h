// Envelopes over ZeroMQ sockets: one Envelope per frame. Shared by node and server so both sides
// frame, bound and count bytes the same way.
#pragma once
#include <string>
#include <zmq.hpp>

#include "codecs/wire.h"

namespace edgebed::wire {

// Sends `env` as one frame (after `routing_id` as a first frame when non-empty, for ROUTER sockets).
// Returns the bytes of the Envelope frame, or 0 when the socket would block or the peer is gone (a
// ROUTER with ZMQ_ROUTER_MANDATORY reports an unknown routing id as EHOSTUNREACH; never a throw).
inline size_t SendEnvelope(zmq::socket_t& sock, Envelope& env, const std::string& routing_id = "",
                           bool dont_wait = false) {
  std::string bytes;
  if (!Encode(env, &bytes).ok()) return 0;
  const auto flags = dont_wait ? zmq::send_flags::dontwait : zmq::send_flags::none;
  try {
    if (!routing_id.empty() && !sock.send(zmq::buffer(routing_id), flags | zmq::send_flags::sndmore)) return 0;
    // Hand the encoded string to ZeroMQ without copying it again.
    auto* owned = new std::string(std::move(bytes));
    zmq::message_t msg(owned->data(), owned->size(),
                       [](void*, void* hint) { delete static_cast<std::string*>(hint); }, owned);
    const size_t n = msg.size();
    return sock.send(std::move(msg), flags) ? n : 0;
  } catch (const zmq::error_t&) {
    return 0;
  }
}

}  // namespace edgebed::wire
