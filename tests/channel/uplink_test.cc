#include <doctest/doctest.h>

#include "channel/uplink.h"

using namespace edgebed;

TEST_CASE("the ideal uplink delivers updates unchanged and counts their bits") {
  ChannelConfig cfg;
  auto up = MakeUplink(cfg, 2, 1);
  REQUIRE(up.ok());
  std::vector<float> v = {1.0f, -2.0f, 3.5f};
  const auto before = v;
  LinkAccounting acc;
  REQUIRE(up.value()->Carry(0, 1, &v, 1000, &acc).ok());
  REQUIRE(up.value()->Carry(1, 1, &v, 24, &acc).ok());
  CHECK(v == before);
  CHECK(acc.payload_bits == 8 * 1024);
  CHECK(acc.airtime_s == 0.0);
}

TEST_CASE("an unknown uplink names the field and the allowed values") {
  ChannelConfig cfg;
  cfg.uplink = "carrier-pigeon";
  auto up = MakeUplink(cfg, 2, 1);
  REQUIRE_FALSE(up.ok());
  CHECK(up.status().message().find("channel.uplink") != std::string::npos);
  CHECK(up.status().message().find("allowed: ideal, digital, analog_ota, digital_ota") != std::string::npos);
}
