// A node holding one GNN shard (join_ack.gnn set): a pipeline stage (GNNPipe) or a graph partition.
// It builds the graph and its shard from the spec, listens for its peers on a PULL socket, tells the
// server where (gnn_ready), connects to every peer when the server sends gnn_start, then trains the
// epochs the server asks for, exchanging embeddings and gradients with its peers directly and
// counting every byte it sends by kind. A peer silent for gnn.peer_timeout_s ends the epoch with an
// error to the server; the server's shutdown ends the node at any time, even mid-epoch.
#pragma once
#include <string>

#include "codecs/edgebed.pb.h"
#include "node/node_runtime.h"
#include "node/server_inbox.h"

namespace edgebed {

// Runs until the server's shutdown or a stop signal (0: the shard leaves, even mid-epoch) or a fatal
// error (1).
int RunGnnNode(ServerInbox& inbox, const std::string& id, const wire::JoinAck& ack, const NodeOptions& opt);

}  // namespace edgebed
