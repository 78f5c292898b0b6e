// A scenario as the options of the pieces it configures (private to server/): the server core's
// (link, rounds, joins, the join_ack every node gets) and the OTA receiver's. The run modes call
// these; the pieces themselves never see a Scenario.
#pragma once
#include "scenarios/scenario.h"
#include "server/gnn_service.h"
#include "server/ota_receiver.h"
#include "server/split_service.h"
#include "server/server_core.h"

namespace edgebed {

ServerCoreOptions CoreOptions(const Scenario& sc);
// The uplink's receiving end: OTA settings, the proxy's training and model (on the run's data plan), the seed.
OtaReceiverOptions OtaOptions(const Scenario& sc, const DataPlan& plan);
// GNN training: [gnn], the data folder, the output folder, the injected crashes (round = epoch).
GnnServiceOptions GnnOptions(const Scenario& sc);
// Split learning: [split], the network, the decoder's training, the bottleneck's channel, the crashes.
SplitServiceOptions SplitOptions(const Scenario& sc);

}  // namespace edgebed
