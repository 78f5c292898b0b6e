// A node in split learning (join_ack.split set): it runs the slimmable encoder, sends each training
// batch's 8-bit bottleneck (at every width of the sandwich step) to the server, takes the gradients
// back and steps; after the round it sends its encoder (SplitFed averages them). For inference it
// serves requests on its test images, choosing the width per request (node/width_controller.h).
#pragma once
#include <string>
#include <vector>

#include "codecs/edgebed.pb.h"
#include "node/node_runtime.h"
#include "node/server_inbox.h"
#include "splitnets/dataset.h"

namespace edgebed {

// Runs until the server's shutdown or a stop signal (0: the node leaves) or a fatal error (1). After
// a rejoin of the same run (the server restarted or resumed) a round in progress is abandoned and the
// node waits for the next one with its encoder as it is.
int RunSplitNode(ServerInbox& inbox, const std::string& id, const wire::JoinAck& ack, const NodeOptions& opt,
                 Dataset data, std::vector<uint32_t> indices);

}  // namespace edgebed
