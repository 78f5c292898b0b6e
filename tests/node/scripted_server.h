// The server's end of a node test: a ROUTER the test drives by hand, one message at a time.
#pragma once
#include <chrono>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "codecs/zmq_wire.h"

namespace edgebed::test {

struct Frame {
  std::string from;  // the connection's routing id (a node's id, or its node host's)
  wire::Envelope env;
  std::vector<zmq::message_t> attached;  // the frames its tensors ride in (a node's update)
  wire::FrameViews frames() const { return wire::Views(attached); }
};

// The next message within `timeout`; false if none came or it did not decode.
inline bool Recv(zmq::socket_t& s, Frame* f, std::chrono::milliseconds timeout = std::chrono::milliseconds(60000)) {
  zmq::pollitem_t it[] = {{s.handle(), 0, ZMQ_POLLIN, 0}};
  zmq::poll(it, 1, timeout);
  if (!(it[0].revents & ZMQ_POLLIN)) return false;
  zmq::message_t id, m;
  (void)s.recv(id);
  (void)s.recv(m);
  wire::RecvRest(s, m, &f->attached);
  f->from = id.to_string();
  return wire::Decode(m.data(), m.size(), 64 << 20, &f->env).ok();
}

}  // namespace edgebed::test
