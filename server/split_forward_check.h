// What a split_forward must be before the decoder sees it (private to server/): batch size, one
// label per sample within the classes, one bottleneck per width (known widths, widest first, each
// with its width's channels and exactly samples x channels x 7 x 7 bytes). Errors name the field
// and the allowed values.
#pragma once
#include "codecs/edgebed.pb.h"
#include "codecs/status.h"
#include "splitnets/slimmable.h"

namespace edgebed {

[[nodiscard]] Status CheckSplitForward(const SlimConfig& cfg, const wire::SplitForward& f);

}  // namespace edgebed
