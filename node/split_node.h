// A node in split learning (join_ack.split set): it runs the slimmable encoder, sends each training
// batch's 8-bit bottleneck (at every width of the sandwich step) to the server, takes the gradients
// back and steps; after the round it sends its encoder (SplitFed averages them). For inference it
// serves requests on its test images, choosing the width per request (node/width_controller.h).
#pragma once
#include <string>
#include <vector>
#include <zmq.hpp>

#include "codecs/edgebed.pb.h"
#include "node/node_runtime.h"
#include "splitnets/dataset.h"

namespace edgebed {

// Runs until the server's shutdown (0) or a fatal error (1). `sock` is the node's connected DEALER.
int RunSplitNode(zmq::socket_t& sock, const std::string& id, const wire::JoinAck& ack, const NodeOptions& opt,
                 Dataset data, std::vector<uint32_t> indices);

}  // namespace edgebed
