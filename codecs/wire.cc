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

void ToTensors(const ParamSet& p, google::protobuf::RepeatedPtrField<Tensor>* out) {
  out->Clear();
  out->Reserve(static_cast<int>(p.specs.size()));
  size_t offset = 0;
  for (const auto& s : p.specs) {
    Tensor* t = out->Add();
    t->set_name(s.name);
    for (int64_t d : s.shape) t->add_shape(d);
    t->set_dtype(FLOAT32);
    const size_t n = static_cast<size_t>(s.numel());
    t->set_data(reinterpret_cast<const char*>(p.flat.data() + offset), n * sizeof(float));
    offset += n;
  }
}

Status FromTensors(const google::protobuf::RepeatedPtrField<Tensor>& in, const std::string& field,
                   const std::vector<TensorSpec>* expected, ParamSet* out) {
  out->specs.clear();
  out->specs.reserve(static_cast<size_t>(in.size()));
  if (expected && static_cast<size_t>(in.size()) != expected->size())
    return Status::InvalidArgument(field + " has " + std::to_string(in.size()) +
                                   " tensors, the model has " + std::to_string(expected->size()));
  size_t total = 0;
  for (int i = 0; i < in.size(); ++i) {
    const Tensor& t = in.Get(i);
    const std::string where = field + "[" + std::to_string(i) + "] '" + t.name() + "'";
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
    if (t.data().size() != static_cast<size_t>(numel) * sizeof(float))
      return Status::InvalidArgument(where + " of shape " + spec.ShapeString() + " carries " +
                                     std::to_string(t.data().size()) + " bytes, expected " +
                                     std::to_string(numel * 4));
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
  out->flat.resize(total);
  size_t offset = 0;
  for (int i = 0; i < in.size(); ++i) {
    const std::string& d = in.Get(i).data();
    std::memcpy(out->flat.data() + offset, d.data(), d.size());
    offset += d.size() / sizeof(float);
  }
  Status finite = CheckFinite(*out);
  if (!finite.ok()) return Status::InvalidArgument(field + ": " + finite.message());
  return Status::Ok();
}

}  // namespace edgebed::wire
