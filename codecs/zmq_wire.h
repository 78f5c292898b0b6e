// Envelopes over ZeroMQ sockets: one message = one Envelope frame, then the frames its tensors' data
// ride in (wire::Attachments; none for most messages). Shared by node and server so both sides frame,
// bound and count bytes the same way.
#pragma once
#include <memory>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "codecs/wire.h"

namespace edgebed::wire {

// Sends `env` as one frame (after `routing_id` as a first frame when non-empty, for ROUTER sockets),
// followed by `att`'s frames, which ZeroMQ reads in place (they stay alive until sent). Returns the
// bytes of the Envelope and attached frames, or 0 when the socket would block or the peer is gone (a
// ROUTER with ZMQ_ROUTER_MANDATORY reports an unknown routing id as EHOSTUNREACH; never a throw).
inline size_t SendEnvelope(zmq::socket_t& sock, Envelope& env, const std::string& routing_id = "",
                           bool dont_wait = false, const Attachments* att = nullptr) {
  std::string bytes;
  if (!Encode(env, &bytes).ok()) return 0;
  const auto flags = dont_wait ? zmq::send_flags::dontwait : zmq::send_flags::none;
  const size_t attached = att ? att->frames.size() : 0;
  try {
    if (!routing_id.empty() && !sock.send(zmq::buffer(routing_id), flags | zmq::send_flags::sndmore)) return 0;
    // Hand the encoded string to ZeroMQ without copying it again.
    auto* owned = new std::string(std::move(bytes));
    zmq::message_t msg(owned->data(), owned->size(),
                       [](void*, void* hint) { delete static_cast<std::string*>(hint); }, owned);
    size_t n = msg.size();
    if (!sock.send(std::move(msg), attached ? flags | zmq::send_flags::sndmore : flags)) return 0;
    // The rest of a multipart message is queued with its first frame: these sends do not block.
    for (size_t i = 0; i < attached; ++i) {
      using Held = std::shared_ptr<const std::vector<float>>;
      auto* held = new Held(att->frames[i]);
      zmq::message_t part(const_cast<float*>((*held)->data()), (*held)->size() * sizeof(float),
                          [](void*, void* hint) { delete static_cast<Held*>(hint); }, held);
      n += part.size();
      if (!sock.send(std::move(part), i + 1 < attached ? flags | zmq::send_flags::sndmore : flags)) return 0;
    }
    return n;
  } catch (const zmq::error_t&) {
    return 0;
  }
}

// Receives what is left of a message after a frame already received (`last`): the frames its
// Envelope's tensors ride in. Keeps at most kMaxAttachedFrames + 1 of them (reads and drops the rest),
// so CheckAttached can name a message with too many.
inline void RecvRest(zmq::socket_t& sock, const zmq::message_t& last, std::vector<zmq::message_t>* rest) {
  rest->clear();
  bool more = last.more();
  while (more) {
    zmq::message_t part;
    if (!sock.recv(part, zmq::recv_flags::dontwait)) return;  // the parts of a message arrive together
    more = part.more();
    if (rest->size() <= kMaxAttachedFrames) rest->push_back(std::move(part));
  }
}

// Receives what is left of a message from the server after its Envelope frame `first` and decodes it.
// The server sends every tensor inline: a message with attached frames is refused (they are read and
// dropped, so the next message starts clean).
inline Status DecodeFromServer(zmq::socket_t& sock, const zmq::message_t& first, size_t max_bytes, Envelope* env) {
  std::vector<zmq::message_t> rest;
  RecvRest(sock, first, &rest);
  if (!rest.empty())
    return Status::InvalidArgument(std::to_string(rest.size()) + " frames after the Envelope: the server sends tensors inline");
  return Decode(first.data(), first.size(), max_bytes, env);
}

// Views of parts[from..], for FromTensors and CheckAttached.
inline FrameViews Views(const std::vector<zmq::message_t>& parts, size_t from = 0) {
  FrameViews v;
  for (size_t i = from; i < parts.size(); ++i) v.emplace_back(static_cast<const char*>(parts[i].data()), parts[i].size());
  return v;
}

}  // namespace edgebed::wire
