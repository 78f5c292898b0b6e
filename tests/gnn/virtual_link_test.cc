// The virtual link clock (gnn/virtual_link.h) on a compute clock the test sets: closed-form arrival
// times for a lone tensor, for tensors queued on one uplink, and a receiver that waits or does not.
#include <doctest/doctest.h>

#include <cmath>

#include "codecs/edgebed.pb.h"
#include "gnn/gnn_wire.h"
#include "gnn/virtual_link.h"

using edgebed::VirtualClock;
using edgebed::VirtualLinkOptions;

TEST_CASE("a tensor arrives after the sender's compute, its bytes on the uplink and the delay; the next one queues") {
  double cpu = 0.0;
  VirtualClock send({100.0, 2.0}, [&] { return cpu; });  // 100 Mbit/s, 2 ms
  cpu = 0.010;                                             // 10 ms of compute
  // 125,000 bytes = 1 Mbit: 10 ms on a 100 Mbit/s link.
  CHECK(send.Send(125000) == doctest::Approx(0.010 + 0.010 + 0.002).epsilon(1e-12));
  // Sent at once after: waits for the uplink (free at 20 ms), leaves at 30 ms.
  CHECK(send.Send(125000) == doctest::Approx(0.030 + 0.002).epsilon(1e-12));
  // The sender is not held up by its sends: its own clock is its compute.
  CHECK(send.Now() == doctest::Approx(0.010));
  cpu = 0.050;  // 40 ms more compute: the uplink is idle again
  CHECK(send.Send(12500) == doctest::Approx(0.050 + 0.001 + 0.002).epsilon(1e-12));
  CHECK(send.Now() == doctest::Approx(0.050));
  send.StartEpoch();
  CHECK(send.Now() == 0.0);
  CHECK(send.Send(125000) == doctest::Approx(0.012).epsilon(1e-12));  // the uplink is free again too
}

TEST_CASE("a receive moves the clock to a later arrival and leaves it at an earlier one; rate 0 = bytes are free") {
  double cpu = 100.0;  // the compute clock's origin does not matter
  VirtualClock recv({0.0, 0.0}, [&] { return cpu; });
  cpu += 0.005;
  recv.Receive(0.022);  // waited 17 ms
  CHECK(recv.Now() == doctest::Approx(0.022));
  cpu += 0.003;
  CHECK(recv.Now() == doctest::Approx(0.025));
  recv.Receive(0.020);  // already there
  CHECK(recv.Now() == doctest::Approx(0.025));
  CHECK(recv.Send(1u << 30) == doctest::Approx(0.025));  // a free link: a GiB takes no time
}

TEST_CASE("the thread CPU clock advances with work and not with sleep") {
  const double t0 = edgebed::ThreadCpuSeconds();
  volatile double x = 0;
  for (int i = 0; i < 20000000; ++i) x = x + std::sqrt(static_cast<double>(i));
  CHECK(edgebed::ThreadCpuSeconds() > t0);
}

TEST_CASE("bad link settings and forged arrival times are refused, naming the field") {
  CHECK(edgebed::CheckVirtualLink({100.0, 2.0}).ok());
  auto st = edgebed::CheckVirtualLink({-1.0, 0.0});
  CHECK(st.message().find("gnn.link_mbps") != std::string::npos);
  st = edgebed::CheckVirtualLink({10.0, NAN});
  CHECK(st.message().find("gnn.link_delay_ms") != std::string::npos);
  edgebed::wire::GnnTensor t;
  t.set_rows(1);
  t.set_dim(1);
  t.set_values(std::string(4, '\0'));
  edgebed::PeerTensor out;
  CHECK(edgebed::FromWire(t, 2, &out).ok());
  for (double bad : {-1.0, double(NAN), double(INFINITY)}) {
    t.set_arrival_s(bad);
    st = edgebed::FromWire(t, 2, &out);
    CHECK(st.message().find("gnn_tensor.arrival_s") != std::string::npos);
  }
  edgebed::wire::GnnEpochDone d;
  for (int k = 0; k < 3; ++k) d.add_correct(0), d.add_total(0);
  for (int k = 0; k < 4; ++k) d.add_sent_bytes(0), d.add_sent_values(0);
  d.set_virtual_train_s(-2.0);
  edgebed::ShardStats s;
  edgebed::ShardTraffic tr;
  CHECK(edgebed::FromWire(d, &s, &tr).message().find("gnn_epoch_done.virtual_train_s") != std::string::npos);
  d.set_virtual_train_s(0.5);
  REQUIRE(edgebed::FromWire(d, &s, &tr).ok());
  CHECK(s.virtual_train_s == 0.5);
}
