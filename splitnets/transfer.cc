// The torch-free half of transfer learning (transfer.h): the IRB network's shapes, what its blocks
// keep for backward, the memory budget, target classes.
#include "splitnets/transfer.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace edgebed {

const std::vector<IrbShape>& IrbNetBlocks() {
  // in, out, hidden (expansion 4), stride, input side: 28 -> 14 -> 7 with 16..64 channels.
  static const std::vector<IrbShape> blocks = {
      {16, 16, 64, 2, 28}, {16, 24, 64, 1, 14}, {24, 24, 96, 1, 14},
      {24, 32, 96, 2, 14}, {32, 32, 128, 1, 7}, {32, 64, 128, 1, 7},
  };
  return blocks;
}

int64_t RetainedBytesAnalytic(const IrbShape& b, TrainRule rule, int batch) {
  const int64_t n = batch;
  const int64_t expanded = n * b.hidden * b.in_hw * b.in_hw;        // expand output (BN1, act 1, dw input)
  const int64_t dw = n * b.hidden * b.out_hw() * b.out_hw();        // depthwise output (BN2, act 2, project input)
  const int64_t projected = n * b.out * b.out_hw() * b.out_hw();    // project output (BN3 input)
  const int64_t f = sizeof(float);
  if (rule == TrainRule::kStandard)
    return f * (3 * expanded + 3 * dw + projected + 2 * 2 * b.hidden + 2 * b.out);
  // MobileTL: a for BN1 and BN2, bit-packed masks, the two conv inputs, BN3 in full.
  return f * (expanded + dw + projected + 2 * b.hidden + 2 * b.out) + (expanded + 7) / 8 + (dw + 7) / 8;
}

namespace {
int64_t TrainedParams(const IrbShape& b, const std::string& mode) {
  const int64_t bn_inner = mode == "mobiletl" ? 2 * b.hidden : 4 * b.hidden;  // shifts only vs scale + shift
  return int64_t{b.in} * b.hidden + int64_t{b.hidden} * 9 + int64_t{b.hidden} * b.out + bn_inner + 2 * b.out;
}
std::string Kb(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(bytes) / 1024.0);
  return buf;
}
}  // namespace

int64_t KeptForBackwardAnalytic(const std::string& mode, int k, int batch, int num_classes) {
  const auto& blocks = IrbNetBlocks();
  const TrainRule rule = mode == "mobiletl" ? TrainRule::kMobileTl : TrainRule::kStandard;
  const int nb = static_cast<int>(blocks.size());
  k = mode == "linear" ? 0 : std::min(k, nb);
  // the classifier's input; cross-entropy's log-softmax, its value and nll_loss's total weight (scalars)
  int64_t kept = int64_t{batch} * (blocks.back().out + num_classes) * 4 + 2 * 4;
  for (int i = nb - k; i < nb; ++i)
    kept += int64_t{batch} * blocks[i].in * blocks[i].in_hw * blocks[i].in_hw * 4 +  // its input (expand conv)
            RetainedBytesAnalytic(blocks[i], rule, batch);
  return kept;
}

int64_t TrainingBytesAnalytic(const std::string& mode, int k, int batch, int num_classes, bool momentum) {
  const auto& blocks = IrbNetBlocks();
  const int nb = static_cast<int>(blocks.size());
  k = mode == "linear" ? 0 : std::min(k, nb);
  int64_t params = int64_t{blocks.back().out} * num_classes + num_classes;
  for (int i = nb - k; i < nb; ++i) params += TrainedParams(blocks[i], mode);
  return KeptForBackwardAnalytic(mode, k, batch, num_classes) + params * 4 * (momentum ? 2 : 1);
}

Result<int> BlocksWithinBudget(const TransferConfig& cfg, int num_classes) {
  const bool momentum = cfg.momentum;
  const int64_t budget = static_cast<int64_t>(std::llround(cfg.memory_budget_kb * 1024.0));
  if (cfg.memory_budget_kb < 0 || !std::isfinite(cfg.memory_budget_kb))
    return Status::InvalidArgument("transfer.memory_budget_kb must be >= 0 (0 = no limit)");
  const int most = cfg.mode == "linear" ? 0 : std::min<int>(cfg.blocks, static_cast<int>(IrbNetBlocks().size()));
  for (int k = most; k >= (cfg.mode == "linear" ? 0 : 1); --k)
    if (budget == 0 || TrainingBytesAnalytic(cfg.mode, k, cfg.batch_size, num_classes, momentum) <= budget) return k;
  const int least = cfg.mode == "linear" ? 0 : 1;
  const int64_t need = TrainingBytesAnalytic(cfg.mode, least, cfg.batch_size, num_classes, momentum);
  std::ostringstream o;
  o << "transfer.memory_budget_kb = " << cfg.memory_budget_kb << " KB is below " << Kb(need)
    << " KB, the least that trains " << (least ? "one block" : "the classifier") << " (mode " << cfg.mode
    << ", batch " << cfg.batch_size << ")";
  return Status::InvalidArgument(o.str());
}

Result<std::vector<int>> ParseClasses(const std::string& text, const std::string& field, int max_class) {
  std::vector<int> out;
  std::stringstream ss(text);
  std::string part;
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument(field + " = \"" + text + "\": " + why + " (classes 0.." + std::to_string(max_class) +
                                   " as \"5-9\" or \"1,3,5\")");
  };
  while (std::getline(ss, part, ',')) {
    int lo = -1, hi = -1;
    char dash = 0, extra = 0;
    const int got = std::sscanf(part.c_str(), " %d %c %d %c", &lo, &dash, &hi, &extra);
    if (got == 1) hi = lo;
    else if (got != 3 || dash != '-') return bad("cannot read '" + part + "'");
    if (lo < 0 || hi > max_class || lo > hi) return bad("'" + part + "' is out of range");
    for (int c = lo; c <= hi; ++c) {
      if (std::find(out.begin(), out.end(), c) != out.end()) return bad("class " + std::to_string(c) + " repeats");
      out.push_back(c);
    }
  }
  if (out.size() < 2) return bad("needs at least two classes");
  return out;
}

std::string FormatClasses(const std::vector<int>& classes) {
  std::string s;
  for (size_t i = 0; i < classes.size(); ++i) s += (i ? "," : "") + std::to_string(classes[i]);
  return s;
}

Dataset SelectClasses(const Dataset& d, const std::vector<int>& classes) {
  int position[256];
  std::fill(std::begin(position), std::end(position), -1);
  for (size_t i = 0; i < classes.size(); ++i) position[classes[i]] = static_cast<int>(i);
  Dataset out;
  out.rows = d.rows;
  out.cols = d.cols;
  out.num_classes = static_cast<int>(classes.size());
  const size_t px = static_cast<size_t>(d.rows) * static_cast<size_t>(d.cols);
  for (size_t i = 0; i < d.size(); ++i) {
    const int p = position[d.labels[i]];
    if (p < 0) continue;
    out.labels.push_back(static_cast<uint8_t>(p));
    out.images.insert(out.images.end(), d.images.begin() + static_cast<std::ptrdiff_t>(i * px),
                      d.images.begin() + static_cast<std::ptrdiff_t>((i + 1) * px));
  }
  return out;
}

Result<uint32_t> FileCrc32(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::NotFound("cannot open " + path);
  uLong crc = crc32(0L, Z_NULL, 0);
  std::vector<char> buf(1 << 16);
  while (f) {
    f.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (f.gcount() > 0) crc = crc32(crc, reinterpret_cast<const Bytef*>(buf.data()), static_cast<uInt>(f.gcount()));
  }
  return static_cast<uint32_t>(crc);
}

}  // namespace edgebed
