// GNN configs and peer tensors on the wire (codecs/edgebed.proto: GnnSpec, GnnTensor).
#pragma once
#include "codecs/edgebed.pb.h"
#include "gnn/gnn_config.h"
#include "gnn/gnn_model.h"

namespace edgebed {

void ToWire(const GnnConfig& c, uint32_t shard, wire::GnnSpec* out);
GnnConfig FromWire(const wire::GnnSpec& s);

void ToWire(const PeerTensor& t, wire::GnnTensor* out);
// Checks the kind, the shape against the bytes, and that `from` is a shard of `parts`.
Status FromWire(const wire::GnnTensor& in, uint32_t parts, PeerTensor* out);

}  // namespace edgebed
