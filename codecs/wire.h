// Frames <-> Envelopes and tensors <-> ParamSets. The only place that maps protobuf to edgebed's own
// types (Flower keeps its serde in one unit too). Every decode checks size, version and tensors.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "codecs/edgebed.pb.h"
#include "codecs/params.h"
#include "codecs/status.h"

namespace edgebed::wire {

constexpr uint32_t kProtocolVersion = 1;
// Default bound on one frame; a scenario may lower or raise it (server.max_frame_mb).
constexpr size_t kDefaultMaxFrameBytes = 64u << 20;

// Serialises `env` (stamping the version) into `out`.
Status Encode(Envelope& env, std::string* out);

// Parses one frame. Fails with a message naming the problem: oversize, unparseable, wrong version.
Status Decode(const void* data, size_t size, size_t max_frame_bytes, Envelope* env);

// Peer text made safe to log: control characters, backslashes and bytes outside printable ASCII
// become \xNN escapes, and text past `max_chars` is cut (with "..."). A peer's routing id, node id,
// reason or message never reaches a log line unescaped, so it cannot forge or split lines.
std::string Printable(std::string_view text, size_t max_chars = 160);

// Name of the body case, for logs and errors ("fit_res", "join", ...).
std::string BodyName(const Envelope& env);

// ParamSet -> repeated Tensor (float32).
void ToTensors(const ParamSet& p, google::protobuf::RepeatedPtrField<Tensor>* out);

// repeated Tensor -> ParamSet. Checks dtype, that data holds exactly numel * 4 bytes, that shapes are
// non-negative and the total stays below max_values; with `expected` non-null also names and shapes.
// Non-finite values are rejected. `field` names the message field in errors ("fit_res.update").
Status FromTensors(const google::protobuf::RepeatedPtrField<Tensor>& in, const std::string& field,
                   const std::vector<TensorSpec>* expected, ParamSet* out);

}  // namespace edgebed::wire
