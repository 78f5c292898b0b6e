#include "codecs/wire.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace edgebed::wire {

Status Encode(Envelope& env, std::string* out) {
  env.set_version(kProtocolVersion);
  if (!env.SerializeToString(out)) return Status::Corruption("Envelope could not be serialised");
  return Status::Ok();
}

Status Decode(const void* data, size_t size, size_t max_frame_bytes, Envelope* env) {
  if (size > max_frame_bytes)
    return Status::InvalidArgument("frame of " + std::to_string(size) + " bytes exceeds the limit of " +
                                   std::to_string(max_frame_bytes) + " bytes");
  if (size == 0) return Status::Corruption("empty frame: expected an Envelope");
  if (size > static_cast<size_t>(std::numeric_limits<int>::max()) ||
      !env->ParseFromArray(data, static_cast<int>(size)))
    return Status::Corruption("frame of " + std::to_string(size) +
                              " bytes is not a valid Envelope (truncated or not protobuf)");
  if (env->version() != kProtocolVersion)
    return Status::InvalidArgument("protocol version " + std::to_string(env->version()) +
                                   " is not supported; this peer speaks version " +
                                   std::to_string(kProtocolVersion));
  if (env->body_case() == Envelope::BODY_NOT_SET)
    return Status::Corruption("Envelope has no body");
  return Status::Ok();
}

std::string Printable(std::string_view text, size_t max_chars) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (out.size() >= max_chars) return out + "...";
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string BodyName(const Envelope& env) {
  const auto* field = Envelope::descriptor()->FindFieldByNumber(static_cast<int>(env.body_case()));
  return field ? field->name() : "none";
}

Status CheckAttached(size_t envelope_bytes, const FrameViews& frames, size_t max_bytes) {
  if (frames.size() > kMaxAttachedFrames)
    return Status::Corruption("message carries " + std::to_string(frames.size()) +
                                   " frames after its Envelope, at most " + std::to_string(kMaxAttachedFrames) +
                                   " are allowed");
  size_t total = envelope_bytes;
  for (const auto& f : frames) total += f.size();
  if (total > max_bytes)
    return Status::InvalidArgument("message of " + std::to_string(total) + " bytes exceeds the limit of " +
                                   std::to_string(max_bytes) + " bytes");
  return Status::Ok();
}

namespace {

void AddSpecs(const std::vector<TensorSpec>& specs, google::protobuf::RepeatedPtrField<Tensor>* out) {
  out->Clear();
  out->Reserve(static_cast<int>(specs.size()));
  for (const auto& s : specs) {
    Tensor* t = out->Add();
    t->set_name(s.name);
    for (int64_t d : s.shape) t->add_shape(d);
    t->set_dtype(FLOAT32);
  }
}

// Appends the float32 of `src` (any alignment) to `dst` and says whether all of them are finite. The
// vector is not zero-filled first where the source is aligned (the usual case: an update's frame),
// and the check runs while the values are still in cache.
bool AppendFinite(std::string_view src, std::vector<float>* dst) {
  const size_t n = src.size() / sizeof(float), at = dst->size();
  if (reinterpret_cast<uintptr_t>(src.data()) % alignof(float) == 0) {
    const auto* f = reinterpret_cast<const float*>(src.data());
    dst->insert(dst->end(), f, f + n);
  } else {
    dst->resize(at + n);
    std::memcpy(dst->data() + at, src.data(), n * sizeof(float));
  }
  return AllFinite(dst->data() + at, n);
}

}  // namespace

void ToTensors(const ParamSet& p, google::protobuf::RepeatedPtrField<Tensor>* out) {
  AddSpecs(p.specs, out);
  size_t offset = 0;
  for (int i = 0; i < out->size(); ++i) {
    const size_t n = static_cast<size_t>(p.specs[static_cast<size_t>(i)].numel());
    out->Mutable(i)->set_data(reinterpret_cast<const char*>(p.flat.data() + offset), n * sizeof(float));
    offset += n;
  }
}

void AttachTensors(const std::vector<TensorSpec>& specs, std::shared_ptr<const std::vector<float>> flat,
                   google::protobuf::RepeatedPtrField<Tensor>* out, Attachments* att) {
  AddSpecs(specs, out);
  att->frames.push_back(std::move(flat));
  const auto frame = static_cast<uint32_t>(att->frames.size());
  uint64_t offset = 0;
  for (int i = 0; i < out->size(); ++i) {
    out->Mutable(i)->set_frame(frame);
    out->Mutable(i)->set_frame_offset(offset);
    offset += static_cast<uint64_t>(specs[static_cast<size_t>(i)].numel()) * sizeof(float);
  }
}

Status FromTensors(const google::protobuf::RepeatedPtrField<Tensor>& in, const std::string& field,
                   const std::vector<TensorSpec>* expected, ParamSet* out, const FrameViews& frames) {
  out->specs.clear();
  out->specs.reserve(static_cast<size_t>(in.size()));
  if (expected && static_cast<size_t>(in.size()) != expected->size())
    return Status::InvalidArgument(field + " has " + std::to_string(in.size()) +
                                   " tensors, the model has " + std::to_string(expected->size()));
  size_t total = 0, in_frames = 0, attached = 0;
  for (const auto& f : frames) attached += f.size();
  std::vector<std::string_view> data(static_cast<size_t>(in.size()));
  for (int i = 0; i < in.size(); ++i) {
    const Tensor& t = in.Get(i);
    const std::string where = field + "[" + std::to_string(i) + "] '" + Printable(t.name()) + "'";
    if (t.dtype() != FLOAT32)
      return Status::InvalidArgument(where + " has dtype " + DType_Name(t.dtype()) +
                                     ", only FLOAT32 is accepted");
    TensorSpec spec{t.name(), {t.shape().begin(), t.shape().end()}};
    int64_t numel = 1;
    for (int64_t d : spec.shape) {
      if (d < 0 || d > (int64_t{1} << 31))
        return Status::InvalidArgument(where + " has dimension " + std::to_string(d) +
                                       ", allowed range is 0..2^31");
      numel *= d;
      if (numel > (int64_t{1} << 31)) return Status::InvalidArgument(where + " is too large");
    }
    const size_t want = static_cast<size_t>(numel) * sizeof(float);
    std::string_view& d = data[static_cast<size_t>(i)];
    if (t.frame() == 0) {
      d = t.data();
    } else {  // in an attached frame: the range must lie inside it
      if (!t.data().empty())
        return Status::InvalidArgument(where + " names frame " + std::to_string(t.frame()) +
                                       " and carries inline data too");
      if (t.frame() > frames.size())
        return Status::InvalidArgument(where + " names frame " + std::to_string(t.frame()) + ", the message has " +
                                       std::to_string(frames.size()) + " attached frames");
      const std::string_view f = frames[t.frame() - 1];
      if (t.frame_offset() > f.size() || f.size() - t.frame_offset() < want)
        return Status::InvalidArgument(where + " of shape " + spec.ShapeString() + " needs bytes [" +
                                       std::to_string(t.frame_offset()) + ", " +
                                       std::to_string(t.frame_offset() + want) + ") of frame " +
                                       std::to_string(t.frame()) + ", which holds " + std::to_string(f.size()));
      d = f.substr(t.frame_offset(), want);
      in_frames += want;
    }
    if (d.size() != want)
      return Status::InvalidArgument(where + " of shape " + spec.ShapeString() + " carries " +
                                     std::to_string(d.size()) + " bytes, expected " + std::to_string(want));
    if (expected) {
      const TensorSpec& e = (*expected)[static_cast<size_t>(i)];
      if (spec.name != e.name)
        return Status::InvalidArgument(where + " is misnamed, expected '" + e.name + "'");
      if (spec.shape != e.shape)
        return Status::InvalidArgument(where + " has shape " + spec.ShapeString() + ", expected " +
                                       e.ShapeString());
    }
    total += static_cast<size_t>(numel);
    out->specs.push_back(std::move(spec));
  }
  // Tensors may not name the same bytes twice over: what they take from frames is bounded by what
  // the frames hold, so a small message cannot make the receiver allocate a large update.
  if (in_frames > attached)
    return Status::InvalidArgument(field + " takes " + std::to_string(in_frames) + " bytes from attached frames that hold " +
                                   std::to_string(attached));
  out->flat.clear();
  out->flat.reserve(total);
  for (const std::string_view d : data)
    if (!AppendFinite(d, &out->flat)) {
      out->flat.resize(total);  // zeros after the tensor at fault: CheckFinite names it and the element
      const Status finite = CheckFinite(*out);
      return Status::InvalidArgument(field + ": " + finite.message());
    }
  return Status::Ok();
}

}  // namespace edgebed::wire
