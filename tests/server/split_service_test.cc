// The split service's decoder step over several nodes' forwards: each node gets the gradients of its
// own widths and samples, as float32 or at 8 bits, and the 8 bits stay within half a step of the
// float32 gradient the same step computes.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "codecs/activation_codec.h"
#include "codecs/wire.h"
#include "server/split_service.h"
#include "splitnets/dataset.h"

using namespace edgebed;

namespace {

// A forward of `n` samples at `widths` (widest first) with bottleneck bytes drawn from `seed`.
wire::SplitForward Forward(uint32_t step, uint32_t n, const std::vector<double>& widths, uint32_t seed) {
  wire::SplitForward f;
  f.set_round(1);
  f.set_step(step);
  f.set_samples(n);
  std::string labels;
  for (uint32_t i = 0; i < n; ++i) labels.push_back(static_cast<char>((seed + i) % 10));
  f.set_labels(labels);
  for (double w : widths) {
    auto* b = f.add_bottleneck();
    b->set_width(w);
    const uint32_t c = static_cast<uint32_t>(BottleneckChannels(SlimConfig{}, w));
    b->set_channels(c);
    std::string codes(n * c * 49, '\0');
    for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<char>((i * 2654435761u + seed * 97u) >> 24);
    b->set_codes(codes);
  }
  return f;
}

}  // namespace

TEST_CASE("one split decoder step answers two nodes with their own gradients, at 32 and at 8 bits") {
  auto test = LoadFashionMnist(DefaultFashionMnistDir(), false, 20);
  REQUIRE(test.ok());
  const wire::SplitForward f0 = Forward(1, 2, {1.0, 0.25}, 1), f1 = Forward(1, 3, {1.0, 0.5}, 2);
  std::vector<wire::SplitBackward> answers[2];
  for (uint32_t bits : {32u, 8u}) {
    SplitServiceOptions o;
    o.nodes = 2;
    o.split.gradient_bits = bits;
    auto s = SplitService::Create(o, test.value());  // the same seed: the same decoder for both
    REQUIRE(s.ok());
    auto replies = s.value()->TrainForwards({{0, &f0}, {1, &f1}});
    REQUIRE(replies.size() == 2);
    for (auto& r : replies) {
      REQUIRE_MESSAGE(r.ok(), r.status().message());
      answers[bits == 8].push_back(r.value());
    }
    const nlohmann::json row = s.value()->EndRound(1, false);
    CHECK(row["steps"] == 2);
    CHECK(row["decoder_steps"] == 1);
    CHECK(row["samples"] == 5);
    // Down: a byte per value and a 4-byte scale per sample and width, or 4 bytes per value.
    const double values = 2 * (8 + 2) * 49 + 3 * (8 + 4) * 49;
    CHECK(row["downlink_gradient_bytes"].get<double>() == (bits == 8 ? values + 4 * (2 * 2 + 3 * 2) : 4 * values));
    if (bits == 8) CHECK(row["gradient_quant_nmse"].get<double>() > 0.0);
  }
  const int channels[2][2] = {{8, 2}, {8, 4}};
  const int samples[2] = {2, 3};
  for (int j = 0; j < 2; ++j) {
    const auto& f32 = answers[0][static_cast<size_t>(j)];
    const auto& q8 = answers[1][static_cast<size_t>(j)];
    REQUIRE(f32.grad_size() == 2);
    REQUIRE(q8.grad8_size() == 2);
    CHECK(q8.grad_size() == 0);
    for (int k = 0; k < 2; ++k) {
      const auto& shape = f32.grad(k).shape();
      CHECK(std::vector<int64_t>(shape.begin(), shape.end()) ==
            std::vector<int64_t>{samples[j], channels[j][k], 7, 7});
      const size_t per = static_cast<size_t>(channels[j][k]) * 49;
      std::vector<float> deq;
      REQUIRE(DequantiseSigned8(q8.grad8(k).codes(), q8.grad8(k).scales().data(), static_cast<size_t>(q8.grad8(k).scales_size()),
                                static_cast<size_t>(samples[j]), per, "grad8", &deq).ok());
      const auto* g = reinterpret_cast<const float*>(f32.grad(k).data().data());
      size_t off = 0, nonzero = 0;
      for (size_t i = 0; i < deq.size(); ++i) {
        off += std::fabs(deq[i] - g[i]) > 0.5f * q8.grad8(k).scales(static_cast<int>(i / per)) * 1.0001f;
        nonzero += g[i] != 0.0f;
      }
      CHECK(off == 0);
      CHECK(nonzero > deq.size() / 2);
    }
  }
}
