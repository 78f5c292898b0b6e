#include "server/split_forward_check.h"

#include <string>

namespace edgebed {
namespace {

constexpr uint32_t kMaxBatch = 65536;

}  // namespace

Status CheckSplitForward(const SlimConfig& cfg, const wire::SplitForward& f) {
  const std::string p = "split_forward";
  if (f.samples() < 1 || f.samples() > kMaxBatch)
    return Status::InvalidArgument(p + ".samples = " + std::to_string(f.samples()) + " is outside 1.." +
                                   std::to_string(kMaxBatch));
  if (f.labels().size() != f.samples())
    return Status::InvalidArgument(p + ".labels has " + std::to_string(f.labels().size()) + " bytes; samples = " +
                                   std::to_string(f.samples()) + " needs one per sample");
  for (size_t i = 0; i < f.labels().size(); ++i)
    if (static_cast<uint8_t>(f.labels()[i]) >= cfg.num_classes)
      return Status::InvalidArgument(p + ".labels[" + std::to_string(i) + "] = " +
                                     std::to_string(static_cast<uint8_t>(f.labels()[i])) + " is outside 0.." +
                                     std::to_string(cfg.num_classes - 1));
  const int n = f.bottleneck_size();
  if (n < 1 || n > static_cast<int>(cfg.widths.size()))
    return Status::InvalidArgument(p + ".bottleneck has " + std::to_string(n) + " entries; allowed 1.." +
                                   std::to_string(cfg.widths.size()) + " (one per width, widest first)");
  if (f.request() > 0 && n != 1)
    return Status::InvalidArgument(p + ": an inference request carries exactly one bottleneck, got " + std::to_string(n));
  for (int k = 0; k < n; ++k) {
    const auto& b = f.bottleneck(k);
    const std::string q = p + ".bottleneck[" + std::to_string(k) + "]";
    if (WidthIndex(cfg, b.width()) < 0) {
      std::string allowed;
      for (double w : cfg.widths) allowed += (allowed.empty() ? "" : ", ") + WidthLabel(w);
      return Status::InvalidArgument(q + ".width = " + std::to_string(b.width()) + " is not one of the widths {" +
                                     allowed + "}");
    }
    if (k > 0 && !(b.width() < f.bottleneck(k - 1).width()))
      return Status::InvalidArgument(q + ".width = " + WidthLabel(b.width()) + ": widths must be distinct and widest first");
    const int c = BottleneckChannels(cfg, b.width());
    if (static_cast<int>(b.channels()) != c)
      return Status::InvalidArgument(q + ".channels = " + std::to_string(b.channels()) + " but width " + WidthLabel(b.width()) +
                                     " has " + std::to_string(c));
    const uint64_t want = static_cast<uint64_t>(f.samples()) * BottleneckBytesPerSample(cfg, b.width());
    if (b.codes().size() != want)
      return Status::InvalidArgument(q + ".codes has " + std::to_string(b.codes().size()) + " bytes; width " +
                                     WidthLabel(b.width()) + " at " + std::to_string(f.samples()) + " samples needs " +
                                     std::to_string(f.samples()) + " x " + std::to_string(c) + " x 7 x 7 = " +
                                     std::to_string(want));
  }
  return Status::Ok();
}

}  // namespace edgebed
