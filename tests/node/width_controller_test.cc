// The width controller: the widest width whose predicted latency fits the deadline, from the rate
// the last transfer measured; the narrowest when none fits.
#include <doctest/doctest.h>

#include "node/width_controller.h"

using namespace edgebed;

namespace {
// 1 sample at widths 0.25..1.0: 98..392 bytes, encoder 0.1..0.4 ms, decoder 0.5 ms.
std::vector<WidthOption> Options() {
  return {{0.25, 98, 0.1, 0.5}, {0.5, 196, 0.2, 0.5}, {0.75, 294, 0.3, 0.5}, {1.0, 392, 0.4, 0.5}};
}
}  // namespace

TEST_CASE("the controller picks the widest width predicted to meet the deadline") {
  WidthController c(Options(), 40.0, 0.1, 1000.0);  // budget 36 ms
  CHECK(c.Choose() == 3);                            // 392 B at 1 Mbit/s: 3.1 ms of air
  CHECK(c.PredictMs(3) == doctest::Approx(0.4 + 3.136 + 0.5));
  c.ObserveTransfer(392, 392 * 8 / 64.0);            // the link fell to 64 kbit/s
  CHECK(c.estimate_kbps() == doctest::Approx(64.0));
  // 1.0: 49 ms, 0.75: 36.75 + 0.8 > 36, 0.5: 24.5 + 0.7 fits.
  CHECK(c.Choose() == 1);
  c.ObserveTransfer(196, 196 * 8 / 10.0);            // 10 kbit/s: nothing fits; the narrowest goes
  CHECK(c.Choose() == 0);
  c.ObserveTransfer(98, 98 * 8 / 200.0);
  CHECK(c.Choose() == 3);                            // 200 kbit/s: 15.7 ms for the full bottleneck
  c.ObserveTransfer(98, 0.0);                        // no airtime measured: the estimate stays
  CHECK(c.estimate_kbps() == doctest::Approx(200.0));
}

TEST_CASE("decoder times: the median of the last reports, so one slow answer does not narrow the width") {
  WidthController c(Options(), 10.0, 0.0, 1000.0);
  CHECK(c.Choose() == 3);  // 0.4 + 3.1 + 0.5 = 4.0 ms
  c.ObserveServerMs(3, 30.0);  // one slow answer
  CHECK(c.options()[3].server_ms == doctest::Approx(30.0));  // alone, it is the median
  c.ObserveServerMs(3, 0.5);
  c.ObserveServerMs(3, 0.6);
  CHECK(c.options()[3].server_ms == doctest::Approx(0.6));
  CHECK(c.Choose() == 3);
  for (int i = 0; i < 3; ++i) c.ObserveServerMs(3, 20.0);  // consistently slow: it counts
  CHECK(c.options()[3].server_ms == doctest::Approx(20.0));
  CHECK(c.Choose() == 2);
}
