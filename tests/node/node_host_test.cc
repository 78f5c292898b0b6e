// A node host against a scripted server: the round's model crosses once per host (later fit_ins
// of the round point back to it with params_as_before) and trains exactly as a full fit_ins does.
#include <doctest/doctest.h>

#include <map>
#include <thread>
#include <zmq.hpp>

#include "codecs/zmq_wire.h"
#include "node/node_host.h"
#include "splitnets/learner.h"
#include "tests/node/scripted_server.h"

using namespace edgebed;
using namespace std::chrono_literals;

namespace {

using test::Frame;
using test::Recv;

// The next message that is not a heartbeat.
Frame Answer(zmq::socket_t& s) {
  Frame f;
  do {
    REQUIRE(Recv(s, &f));
  } while (f.env.has_heartbeat());
  return f;
}

}  // namespace

TEST_CASE("a node host trains from the round's one model copy as from a full fit_ins, and refuses a pointer to none") {
  zmq::context_t ctx(1);
  zmq::socket_t router(ctx, zmq::socket_type::router);
  router.bind("tcp://127.0.0.1:*");
  int rc = -1;
  std::thread host([&, ep = router.get(zmq::sockopt::last_endpoint)] {
    NodeHostOptions o;
    o.server = ep;
    o.first = 0;
    o.count = 3;
    o.num_nodes = 3;
    rc = RunNodeHost(o);
  });
  std::string route;
  for (int i = 0; i < 3; ++i) {
    Frame f;
    REQUIRE(Recv(router, &f));
    REQUIRE(f.env.has_join());
    route = f.from;
    wire::Envelope ack;
    ack.set_node(f.env.join().node_id());
    auto* a = ack.mutable_join_ack();
    a->set_accepted(true);
    a->set_model("logreg");
    a->set_partition("iid");
    a->set_num_nodes(3);
    a->set_seed(1);
    a->set_train_limit(600);
    wire::SendEnvelope(router, ack, route);
  }
  for (int i = 0; i < 3; ++i) {  // ready
    Frame f;
    REQUIRE(Recv(router, &f));
    CHECK(f.env.has_heartbeat());
  }

  auto model = Learner::Create("logreg", 5).value()->GetParams();
  auto fit = [&](const std::string& node, uint32_t round, bool light) {
    wire::Envelope e;
    e.set_node(node);
    auto* ins = e.mutable_fit_ins();
    ins->set_round(round);
    ins->set_local_epochs(1);
    ins->set_batch_size(20);
    ins->set_learning_rate(0.1f);
    ins->set_seed(7);
    if (light) ins->set_params_as_before(true);
    else wire::ToTensors(model, ins->mutable_params());
    wire::SendEnvelope(router, e, route);
  };
  auto update = [&](const Frame& f) {
    REQUIRE(f.env.has_fit_res());
    ParamSet u;
    REQUIRE(wire::FromTensors(f.env.fit_res().update(), "fit_res.update", &model.specs, &u, f.frames()).ok());
    return u.flat;
  };

  // Round 1: node-0 gets the model, node-1 a pointer to it.
  fit("node-0", 1, false);
  fit("node-1", 1, true);
  std::map<std::string, std::vector<float>> round1;
  for (int i = 0; i < 2; ++i) {
    Frame f = Answer(router);
    round1[f.env.node()] = update(f);
  }
  REQUIRE(round1.count("node-0"));
  REQUIRE(round1.count("node-1"));
  CHECK(round1["node-0"] != round1["node-1"]);  // each its own share of the data

  // Round 2: node-1 gets the same model and seed in full: the same update, to the bit.
  fit("node-1", 2, false);
  const std::vector<float> full = update(Answer(router));
  CHECK(full == round1["node-1"]);

  // Round 3: a pointer with no model of round 3 before it on this connection.
  fit("node-2", 3, true);
  Frame err = Answer(router);
  CHECK(err.env.node() == "node-2");
  REQUIRE(err.env.has_error());
  CHECK(err.env.error().code() == wire::BAD_TENSOR);
  CHECK(err.env.error().message().find("fit_ins.params_as_before") != std::string::npos);
  CHECK(err.env.error().message().find("round 3") != std::string::npos);

  for (const char* node : {"node-0", "node-1", "node-2"}) {
    wire::Envelope bye;
    bye.set_node(node);
    bye.mutable_shutdown()->set_reason("test over");
    wire::SendEnvelope(router, bye, route);
  }
  for (int i = 0; i < 3; ++i) CHECK(Answer(router).env.has_leave());
  host.join();
  CHECK(rc == 0);
}
