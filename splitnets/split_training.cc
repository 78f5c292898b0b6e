#include "splitnets/split_training.h"

#include <algorithm>
#include <chrono>
#include <numeric>

#include "codecs/activation_codec.h"

namespace edgebed {

std::vector<double> StepWidths(const SlimConfig& cfg, uint32_t sandwich_random, double train_width, Rng& rng) {
  if (train_width > 0.0) return {train_width};
  const auto& w = cfg.widths;
  std::vector<double> out = {w.back()};
  if (w.size() == 1) return out;
  std::vector<double> middle(w.begin() + 1, w.end() - 1);
  std::shuffle(middle.begin(), middle.end(), rng);
  middle.resize(std::min<size_t>(middle.size(), sandwich_random));
  std::sort(middle.rbegin(), middle.rend());
  out.insert(out.end(), middle.begin(), middle.end());
  out.push_back(w.front());
  return out;
}

std::string BottleneckGradName(double width) { return "grad_w" + WidthLabel(width); }

Status EncodeWidths(SlimEncoder& enc, const float* x, size_t n, const std::vector<double>& widths,
                    std::vector<std::vector<float>>* acts) {
  acts->resize(widths.size());
  for (size_t k = 0; k < widths.size(); ++k) {
    EDGEBED_RETURN_IF_ERROR(enc.SetWidth(widths[k]));
    EDGEBED_RETURN_IF_ERROR(enc.Encode(x, n, /*train=*/true, &(*acts)[k]));
  }
  return Status::Ok();
}

SplitTrainStats TrainSplitLocal(SlimEncoder& enc, SlimDecoder& dec, const Dataset& data,
                                const std::vector<uint32_t>& indices, const SplitTrainOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  SplitTrainStats st;
  st.samples = indices.size();
  const size_t bs = static_cast<size_t>(std::max(1, opt.batch_size));
  const size_t batches = (indices.size() + bs - 1) / bs, total = batches * static_cast<size_t>(opt.epochs);
  Rng rng = MakeRng(opt.seed, "split-train");
  std::vector<uint32_t> order = indices;
  std::vector<float> x;
  std::vector<uint8_t> labels, codes;
  std::vector<std::vector<float>> acts;
  double loss_sum = 0.0;
  for (int e = 0; e < opt.epochs; ++e) {
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t b = 0; b < order.size(); b += bs) {
      const size_t n = std::min(bs, order.size() - b);
      SlimEncoder::Images(data, order.data() + b, n, &x, &labels);
      const auto widths = StepWidths(enc.config(), opt.sandwich_random, opt.train_width, rng);
      if (!EncodeWidths(enc, x.data(), n, widths, &acts).ok()) return st;
      std::vector<SlimDecoder::Input> in;
      for (size_t k = 0; k < widths.size(); ++k) {
        if (opt.quantise) {  // what the decoder sees is what 8 bits carry
          QuantiseUnit8(acts[k], &codes);
          DequantiseUnit8(codes.data(), codes.size(), &acts[k]);
        }
        in.push_back({widths[k], acts[k].data()});
      }
      auto step = dec.TrainStep(in, n, labels.data(), opt.distill);
      if (!step.ok()) return st;
      for (size_t k = 0; k < widths.size(); ++k) (void)enc.Backward(widths[k], step->grad[k]);
      enc.Step();
      loss_sum += step->loss[0];
      ++st.steps;
      if (opt.on_progress && !opt.on_progress(static_cast<float>(st.steps) / static_cast<float>(total))) {
        e = opt.epochs;
        break;
      }
    }
  }
  st.mean_loss = st.steps ? loss_sum / static_cast<double>(st.steps) : 0.0;
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return st;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

double EncodeMedianMs(SlimEncoder& enc, double width, const float* x, size_t n, int reps, int warmup) {
  std::vector<float> act;
  (void)enc.SetWidth(width);
  for (int i = 0; i < warmup; ++i) (void)enc.Encode(x, n, false, &act);
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto a = std::chrono::steady_clock::now();
    (void)enc.Encode(x, n, false, &act);
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
  }
  return Median(std::move(t));
}

SplitEval EvaluateSplit(SlimEncoder& enc, SlimDecoder& dec, const Dataset& data, double width, bool quantise,
                        const std::function<void(std::vector<uint8_t>*)>& link) {
  SplitEval ev;
  if (!enc.SetWidth(width).ok() || data.size() == 0) return ev;
  std::vector<uint32_t> idx(data.size());
  std::iota(idx.begin(), idx.end(), 0u);
  std::vector<float> x, act;
  std::vector<uint8_t> labels, codes, pred;
  size_t correct = 0;
  double loss = 0.0;
  constexpr size_t kBatch = 500;
  for (size_t b = 0; b < idx.size(); b += kBatch) {
    const size_t n = std::min(kBatch, idx.size() - b);
    SlimEncoder::Images(data, idx.data() + b, n, &x, &labels);
    if (!enc.Encode(x.data(), n, /*train=*/false, &act).ok()) return ev;
    if (quantise) {
      QuantiseUnit8(act, &codes);
      if (link) link(&codes);
      DequantiseUnit8(codes.data(), codes.size(), &act);
    }
    if (!dec.Predict({width, act.data()}, n, &pred, labels.data(), &loss).ok()) return ev;
    for (size_t i = 0; i < n; ++i) correct += pred[i] == labels[i];
  }
  ev.samples = idx.size();
  ev.accuracy = static_cast<double>(correct) / static_cast<double>(ev.samples);
  ev.loss = loss / static_cast<double>(ev.samples);
  return ev;
}

}  // namespace edgebed
