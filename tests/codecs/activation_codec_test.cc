// The split network's tensors on the wire: the 8-bit gradients that answer a bottleneck.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "codecs/activation_codec.h"

using namespace edgebed;

TEST_CASE("8-bit gradients: each value within half a step of its sample's scale, zeros and NaN safe, sizes checked") {
  // Three samples of 98 values: Gaussian at very different magnitudes, then all zeros.
  const size_t rows = 3, per = 98;
  std::vector<float> g(rows * per, 0.0f);
  std::mt19937 gen(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (size_t i = 0; i < per; ++i) g[i] = 1e-6f * normal(gen), g[per + i] = 3.0f * normal(gen);
  g[per + 5] = std::numeric_limits<float>::quiet_NaN();  // sent as 0
  std::string codes;
  std::vector<float> scales;
  QuantiseSigned8(g.data(), rows, per, &codes, &scales);
  REQUIRE(codes.size() == rows * per);
  REQUIRE(scales.size() == rows);
  CHECK(scales[2] == 0.0f);
  std::vector<float> back;
  REQUIRE(DequantiseSigned8(codes, scales.data(), scales.size(), rows, per, "grad8[0]", &back).ok());
  for (size_t r = 0; r < 2; ++r) {
    float top = 0.0f;
    for (size_t i = 0; i < per; ++i)
      if (std::isfinite(g[r * per + i])) top = std::max(top, std::fabs(g[r * per + i]));
    CHECK(scales[r] == doctest::Approx(top / 127.0f).epsilon(1e-6));  // a scale per sample: small ones keep their precision
    for (size_t i = 0; i < per; ++i) {
      const float want = std::isfinite(g[r * per + i]) ? g[r * per + i] : 0.0f;
      CHECK(std::fabs(back[r * per + i] - want) <= 0.5f * scales[r] * (1.0f + 1e-5f));
    }
  }
  for (size_t i = 0; i < per; ++i) CHECK(back[2 * per + i] == 0.0f);

  // What a node refuses: the wrong count of codes or scales, a negative or non-finite scale.
  CHECK(DequantiseSigned8(codes, scales.data(), 2, rows, per, "grad8[1]", &back).message().find("grad8[1]: 2 scales for 3 samples") == 0);
  CHECK(DequantiseSigned8(codes.substr(1), scales.data(), 3, rows, per, "grad8[0]", &back).message().find("293 codes; 3 samples x 98") != std::string::npos);
  scales[1] = -1.0f;
  CHECK(DequantiseSigned8(codes, scales.data(), 3, rows, per, "grad8[0]", &back).message().find("scale 1 is -1") != std::string::npos);
  scales[1] = std::numeric_limits<float>::infinity();
  CHECK(!DequantiseSigned8(codes, scales.data(), 3, rows, per, "grad8[0]", &back).ok());
}
