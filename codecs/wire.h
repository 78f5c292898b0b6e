// Frames <-> Envelopes and tensors <-> ParamSets. The only place that maps protobuf to edgebed's own
// types (Flower keeps its serde in one unit too). Every decode checks size, version and tensors.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "codecs/edgebed.pb.h"
#include "codecs/params.h"
#include "codecs/status.h"

namespace edgebed::wire {

constexpr uint32_t kProtocolVersion = 2;
// Default bound on one message (its Envelope frame and attached frames); a scenario may lower or
// raise it (server.max_frame_mb).
constexpr size_t kDefaultMaxFrameBytes = 64u << 20;
// Frames a message may carry after its Envelope frame (Tensor.frame = 1..this).
constexpr size_t kMaxAttachedFrames = 8;

// Tensor data leaving as frames of their own after the Envelope frame: shared with their owner until
// ZeroMQ has sent them, never copied into Protobuf or serialised.
struct Attachments {
  std::vector<std::shared_ptr<const std::vector<float>>> frames;
};

// The frames a received message carried after its Envelope frame; views, valid while the receiver
// keeps the message.
using FrameViews = std::vector<std::string_view>;

// Serialises `env` (stamping the version) into `out`.
Status Encode(Envelope& env, std::string* out);

// Parses an Envelope frame. Fails with a message naming the problem: oversize, unparseable, wrong version.
Status Decode(const void* data, size_t size, size_t max_frame_bytes, Envelope* env);

// Peer text made safe to log: control characters, backslashes and bytes outside printable ASCII
// become \xNN escapes, and text past `max_chars` is cut (with "..."). A peer's routing id, node id,
// reason or message never reaches a log line unescaped, so it cannot forge or split lines.
std::string Printable(std::string_view text, size_t max_chars = 160);

// Name of the body case, for logs and errors ("fit_res", "join", ...).
std::string BodyName(const Envelope& env);

// Checks what a message carried after its Envelope frame of `envelope_bytes`: at most
// kMaxAttachedFrames frames, and the whole message within `max_bytes`.
Status CheckAttached(size_t envelope_bytes, const FrameViews& frames, size_t max_bytes);

// ParamSet -> repeated Tensor (float32), the data copied inline (small tensors).
void ToTensors(const ParamSet& p, google::protobuf::RepeatedPtrField<Tensor>* out);
// The same tensors with their data left in `flat`, which becomes the next frame of `att` (updates
// and models: the node's update crosses without a copy on either side of the wire).
void AttachTensors(const std::vector<TensorSpec>& specs, std::shared_ptr<const std::vector<float>> flat,
                   google::protobuf::RepeatedPtrField<Tensor>* out, Attachments* att);

// repeated Tensor -> ParamSet. Checks dtype, that each tensor's data (inline, or in one of `frames`)
// hold exactly numel * 4 bytes, that shapes are non-negative and bounded; with `expected` non-null
// also names and shapes. Non-finite values are rejected. `field` names the message field in errors
// ("fit_res.update"). The data are copied and checked in one pass.
Status FromTensors(const google::protobuf::RepeatedPtrField<Tensor>& in, const std::string& field,
                   const std::vector<TensorSpec>* expected, ParamSet* out, const FrameViews& frames = {});

}  // namespace edgebed::wire
