// The node runtime against a scripted server: join, evaluate, a bad model download, a good fit,
// shutdown.
#include <doctest/doctest.h>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>
#include <thread>
#include <zmq.hpp>

#include "codecs/zmq_wire.h"
#include "node/node_runtime.h"
#include "splitnets/learner.h"
#include "tests/node/scripted_server.h"

using namespace edgebed;
using namespace std::chrono_literals;

using test::Frame;
using test::Recv;

TEST_CASE("a node joins, evaluates, refuses a bad model, trains, and leaves on shutdown") {
  zmq::context_t ctx(1);
  zmq::socket_t router(ctx, zmq::socket_type::router);
  router.bind("tcp://127.0.0.1:*");
  const std::string ep = router.get(zmq::sockopt::last_endpoint);
  int rc = -1;
  std::thread node([&] {
    NodeOptions o;
    o.server = ep;
    o.index = 1;
    rc = RunNode(o);
  });

  Frame f;
  REQUIRE(Recv(router, &f));
  REQUIRE(f.env.has_join());
  CHECK(f.from == "node-1");
  CHECK(f.env.join().node_index() == 1);

  wire::Envelope ack;
  auto* a = ack.mutable_join_ack();
  a->set_accepted(true);
  a->set_model("logreg");
  a->set_partition("iid");
  a->set_num_nodes(2);
  a->set_seed(1);
  a->set_train_limit(1000);
  wire::SendEnvelope(router, ack, f.from);
  REQUIRE(Recv(router, &f));
  REQUIRE(f.env.has_heartbeat());
  CHECK(f.env.heartbeat().round() == 0);  // ready: data and model prepared

  auto learner = Learner::Create("logreg", 5).value();
  // The server sends every tensor inline: a message with attached frames is dropped, not answered.
  wire::Envelope attached;
  wire::Attachments att;
  attached.mutable_evaluate_ins()->set_round(7);
  wire::AttachTensors(learner->GetParams().specs, std::make_shared<const std::vector<float>>(learner->GetParams().flat),
                      attached.mutable_evaluate_ins()->mutable_params(), &att);
  wire::SendEnvelope(router, attached, f.from, false, &att);
  wire::Envelope ev;
  ev.mutable_evaluate_ins()->set_round(0);
  wire::ToTensors(learner->GetParams(), ev.mutable_evaluate_ins()->mutable_params());
  wire::SendEnvelope(router, ev, f.from);
  REQUIRE(Recv(router, &f));
  REQUIRE(f.env.has_evaluate_res());
  CHECK(f.env.evaluate_res().round() == 0);  // the answer to the inline evaluate_ins, the first it took
  CHECK(f.env.evaluate_res().num_samples() == 500);  // half of 1,000 with two IID nodes
  CHECK(f.env.evaluate_res().accuracy() >= 0.0f);
  CHECK(f.env.evaluate_res().accuracy() <= 1.0f);

  wire::Envelope bad;
  bad.mutable_fit_ins()->set_round(1);
  ParamSet wrong = learner->GetParams();
  wrong.specs[1].shape = {11};
  wrong.flat.push_back(0.0f);
  wire::ToTensors(wrong, bad.mutable_fit_ins()->mutable_params());
  wire::SendEnvelope(router, bad, f.from);
  REQUIRE(Recv(router, &f));
  REQUIRE(f.env.has_error());
  CHECK(f.env.error().code() == wire::BAD_TENSOR);
  CHECK(f.env.error().message().find("expected [10]") != std::string::npos);

  wire::Envelope fit;
  auto* ins = fit.mutable_fit_ins();
  ins->set_round(2);
  ins->set_local_epochs(1);
  ins->set_batch_size(50);
  ins->set_learning_rate(0.1f);
  ins->set_seed(3);
  wire::ToTensors(learner->GetParams(), ins->mutable_params());
  wire::SendEnvelope(router, fit, f.from);
  do {
    REQUIRE(Recv(router, &f));
  } while (f.env.has_heartbeat());
  REQUIRE(f.env.has_fit_res());
  CHECK(f.env.fit_res().round() == 2);
  CHECK(f.env.fit_res().num_samples() == 500);
  CHECK(f.attached.size() == 1);  // the update's data ride in a frame of their own
  CHECK(f.env.fit_res().update(0).frame() == 1);
  ParamSet update;
  REQUIRE(wire::FromTensors(f.env.fit_res().update(), "fit_res.update", &learner->specs(), &update, f.frames()).ok());
  double norm = 0;
  for (float x : update.flat) norm += x * x;
  CHECK(norm > 0.0);  // it trained

  wire::Envelope bye;
  bye.mutable_shutdown()->set_reason("test over");
  wire::SendEnvelope(router, bye, f.from);
  REQUIRE(Recv(router, &f));
  CHECK(f.env.has_leave());
  node.join();
  CHECK(rc == 0);
}

TEST_CASE("a node given an address where no server listens says so within seconds, then gives up at its timeout") {
  auto captured = std::make_shared<std::ostringstream>();
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(*captured);
  spdlog::default_logger()->sinks().push_back(sink);
  NodeOptions o;
  o.server = "tcp://127.0.0.1:1";  // nothing listens on port 1: every connect is refused
  o.index = 0;
  o.server_timeout_s = 5.0;
  CHECK(RunNode(o) == 1);
  spdlog::default_logger()->sinks().pop_back();
  const std::string log = captured->str();
  CHECK(log.find("cannot reach the server at tcp://127.0.0.1:1") != std::string::npos);
  CHECK(log.find("silent for 5 s; giving up") != std::string::npos);
}
