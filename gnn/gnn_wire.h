// GNN configs and peer tensors on the wire (codecs/edgebed.proto: GnnSpec, GnnTensor).
#pragma once
#include "codecs/edgebed.pb.h"
#include "gnn/gnn_config.h"
#include "gnn/gnn_model.h"
#include "gnn/gnn_report.h"

namespace edgebed {

void ToWire(const GnnConfig& c, uint32_t shard, wire::GnnSpec* out);
GnnConfig FromWire(const wire::GnnSpec& s);

void ToWire(const PeerTensor& t, wire::GnnTensor* out);
// Checks the kind, the shape against the bytes, and that `from` is a shard of `parts`.
Status FromWire(const wire::GnnTensor& in, uint32_t parts, PeerTensor* out);

// A shard's epoch report (gnn_epoch_done without its epoch, which the caller sets or checks).
void ToWire(const ShardStats& s, const ShardTraffic& t, wire::GnnEpochDone* out);
// Checks the counts' lengths (3 splits, 4 kinds) and that the losses are finite.
Status FromWire(const wire::GnnEpochDone& d, ShardStats* s, ShardTraffic* t);

}  // namespace edgebed
