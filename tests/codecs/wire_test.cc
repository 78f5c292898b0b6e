#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "codecs/rng.h"
#include "codecs/wire.h"
#include "codecs/zmq_wire.h"

using namespace edgebed;

namespace {
ParamSet Small() {
  ParamSet p = ParamSet::Zeros({{"w", {2, 3}}, {"b", {3}}});
  for (size_t i = 0; i < p.flat.size(); ++i) p.flat[i] = 0.5f * static_cast<float>(i) - 1.0f;
  return p;
}
std::string Encoded(wire::Envelope& env) {
  std::string s;
  REQUIRE(wire::Encode(env, &s).ok());
  return s;
}
}  // namespace

TEST_CASE("a fit_res survives encode and decode bit for bit") {
  const ParamSet p = Small();
  wire::Envelope env;
  env.set_sender("node-1");
  wire::ToTensors(p, env.mutable_fit_res()->mutable_update());
  env.mutable_fit_res()->set_num_samples(42);
  const std::string bytes = Encoded(env);
  wire::Envelope got;
  REQUIRE(wire::Decode(bytes.data(), bytes.size(), 1 << 20, &got).ok());
  CHECK(got.version() == wire::kProtocolVersion);
  CHECK(wire::BodyName(got) == "fit_res");
  ParamSet back;
  REQUIRE(wire::FromTensors(got.fit_res().update(), "fit_res.update", &p.specs, &back).ok());
  CHECK(back.specs == p.specs);
  CHECK(back.flat == p.flat);
}

TEST_CASE("frames over the size limit are refused with the limit in the message") {
  wire::Envelope env;
  wire::ToTensors(Small(), env.mutable_fit_res()->mutable_update());
  const std::string bytes = Encoded(env);
  wire::Envelope got;
  Status st = wire::Decode(bytes.data(), bytes.size(), bytes.size() - 1, &got);
  CHECK_FALSE(st.ok());
  CHECK(st.message().find("exceeds the limit of " + std::to_string(bytes.size() - 1)) != std::string::npos);
}

TEST_CASE("random bytes, truncated frames and empty frames are corruption, not crashes") {
  wire::Envelope env;
  wire::ToTensors(Small(), env.mutable_fit_res()->mutable_update());
  const std::string bytes = Encoded(env);
  wire::Envelope got;
  for (size_t cut : {size_t{1}, bytes.size() / 2, bytes.size() - 3}) {
    Status st = wire::Decode(bytes.data(), cut, 1 << 20, &got);
    CHECK_FALSE(st.ok());
  }
  CHECK_FALSE(wire::Decode("", 0, 1 << 20, &got).ok());
  Rng rng = MakeRng(3, "garbage");
  int refused = 0;
  for (int trial = 0; trial < 200; ++trial) {
    std::string junk(1 + rng() % 300, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    refused += !wire::Decode(junk.data(), junk.size(), 1 << 20, &got).ok();
  }
  CHECK(refused == 200);  // random bytes almost never form a versioned Envelope with a body
}

TEST_CASE("a wrong protocol version names both versions") {
  wire::Envelope env;
  env.mutable_heartbeat()->set_round(1);
  std::string bytes;
  env.set_version(99);
  REQUIRE(env.SerializeToString(&bytes));
  wire::Envelope got;
  Status st = wire::Decode(bytes.data(), bytes.size(), 1 << 20, &got);
  CHECK(st.code() == Status::Code::kInvalidArgument);
  CHECK(st.message().find("version 99") != std::string::npos);
  CHECK(st.message().find("version " + std::to_string(wire::kProtocolVersion)) != std::string::npos);
}

TEST_CASE("tensors are checked on arrival: shape, name, size, dtype, finiteness") {
  const ParamSet p = Small();
  wire::Envelope env;
  auto* t = env.mutable_fit_res()->mutable_update();
  ParamSet out;

  SUBCASE("wrong shape names the tensor and both shapes") {
    wire::ToTensors(p, t);
    t->Mutable(0)->set_shape(1, 2);
    t->Mutable(0)->mutable_data()->resize(4 * 4);
    Status st = wire::FromTensors(*t, "fit_res.update", &p.specs, &out);
    CHECK_FALSE(st.ok());
    CHECK(st.message().find("'w' has shape [2, 2], expected [2, 3]") != std::string::npos);
  }
  SUBCASE("data shorter than the shape says") {
    wire::ToTensors(p, t);
    t->Mutable(1)->mutable_data()->resize(8);
    Status st = wire::FromTensors(*t, "fit_res.update", &p.specs, &out);
    CHECK(st.message().find("carries 8 bytes, expected 12") != std::string::npos);
  }
  SUBCASE("a missing tensor") {
    wire::ToTensors(p, t);
    t->RemoveLast();
    CHECK(wire::FromTensors(*t, "fit_res.update", &p.specs, &out).message().find("has 1 tensors, the model has 2") !=
          std::string::npos);
  }
  SUBCASE("a misnamed tensor") {
    wire::ToTensors(p, t);
    t->Mutable(1)->set_name("bias");
    CHECK(wire::FromTensors(*t, "fit_res.update", &p.specs, &out).message().find("expected 'b'") != std::string::npos);
  }
  SUBCASE("a dtype other than float32") {
    wire::ToTensors(p, t);
    t->Mutable(0)->set_dtype(wire::DTYPE_UNSPECIFIED);
    CHECK(wire::FromTensors(*t, "fit_res.update", &p.specs, &out).message().find("only FLOAT32") != std::string::npos);
  }
  SUBCASE("NaN and infinity are refused") {
    for (float bad : {std::nanf(""), std::numeric_limits<float>::infinity()}) {
      ParamSet q = p;
      q.flat[4] = bad;
      wire::ToTensors(q, t);
      Status st = wire::FromTensors(*t, "fit_res.update", &p.specs, &out);
      CHECK_FALSE(st.ok());
      CHECK(st.message().find("non-finite") != std::string::npos);
      CHECK(st.message().find("'w'") != std::string::npos);
    }
  }
  SUBCASE("negative dimensions") {
    wire::ToTensors(p, t);
    t->Mutable(1)->set_shape(0, -3);
    CHECK(wire::FromTensors(*t, "fit_res.update", nullptr, &out).message().find("dimension -3") != std::string::npos);
  }
}

TEST_CASE("tensors in attached frames: sent in place over a socket, received bit for bit") {
  const ParamSet p = Small();
  auto flat = std::make_shared<const std::vector<float>>(p.flat);
  zmq::context_t ctx(1);
  zmq::socket_t a(ctx, zmq::socket_type::pair), b(ctx, zmq::socket_type::pair);
  a.bind("inproc://attached");
  b.connect("inproc://attached");
  wire::Envelope env;
  wire::Attachments att;
  wire::AttachTensors(p.specs, flat, env.mutable_fit_res()->mutable_update(), &att);
  CHECK(env.fit_res().update(0).data().empty());
  CHECK(env.fit_res().update(1).frame() == 1);
  CHECK(env.fit_res().update(1).frame_offset() == 6 * sizeof(float));
  const std::string envelope = Encoded(env);
  const size_t sent = wire::SendEnvelope(a, env, "", false, &att);
  CHECK(sent == envelope.size() + p.bytes());  // the Envelope and the 36 data bytes, nothing else

  zmq::message_t first;
  std::vector<zmq::message_t> rest;
  REQUIRE(b.recv(first));
  wire::RecvRest(b, first, &rest);
  REQUIRE(rest.size() == 1);
  CHECK(rest[0].size() == p.bytes());
  wire::Envelope got;
  REQUIRE(wire::Decode(first.data(), first.size(), 1 << 20, &got).ok());
  const wire::FrameViews frames = wire::Views(rest);
  CHECK(wire::CheckAttached(first.size(), frames, 1 << 20).ok());
  ParamSet back;
  REQUIRE(wire::FromTensors(got.fit_res().update(), "fit_res.update", &p.specs, &back, frames).ok());
  CHECK(back.flat == p.flat);
  // ZeroMQ holds the update, not a copy (inproc hands the very buffer over), and lets go of it with
  // the received message.
  CHECK(static_cast<const void*>(rest[0].data()) == static_cast<const void*>(flat->data()));
  rest.clear();
  att.frames.clear();
  CHECK(flat.use_count() == 1);
}

TEST_CASE("attached frames are checked: the frame named, the range inside it, the count, the size") {
  const ParamSet p = Small();
  wire::Envelope env;
  wire::Attachments att;
  auto* t = env.mutable_fit_res()->mutable_update();
  wire::AttachTensors(p.specs, std::make_shared<const std::vector<float>>(p.flat), t, &att);
  const std::string data(reinterpret_cast<const char*>(p.flat.data()), p.bytes());
  ParamSet out;
  const auto from = [&](const wire::FrameViews& frames) {
    return wire::FromTensors(*t, "fit_res.update", &p.specs, &out, frames).message();
  };
  CHECK(wire::FromTensors(*t, "fit_res.update", &p.specs, &out, {data}).ok());
  CHECK(from({}).find("fit_res.update[0] 'w' names frame 1, the message has 0 attached frames") != std::string::npos);
  // The frame is one float short: the last tensor's range runs past its end.
  CHECK(from({std::string_view(data).substr(0, data.size() - 4)})
            .find("'b' of shape [3] needs bytes [24, 36) of frame 1, which holds 32") != std::string::npos);
  t->Mutable(1)->set_frame_offset(~uint64_t{0});  // an offset that would wrap
  CHECK(from({data}).find("needs bytes") != std::string::npos);
  t->Mutable(1)->set_frame_offset(24);
  t->Mutable(1)->set_data("abcdabcdabcd");
  CHECK(from({data}).find("'b' names frame 1 and carries inline data too") != std::string::npos);
  t->Mutable(1)->clear_data();
  // 'b' reads bytes 'w' took already: the tensors may name no more bytes than the frames hold (a
  // small message cannot make the receiver allocate a large update).
  t->Mutable(1)->set_frame_offset(0);
  CHECK(from({data.substr(0, 24)}) == "fit_res.update takes 36 bytes from attached frames that hold 24");
  t->Mutable(1)->set_frame_offset(24);
  std::string nan = data;
  const float bad = std::nanf("");
  std::memcpy(nan.data() + 7 * sizeof(float), &bad, sizeof(bad));
  const std::string st = from({nan});
  CHECK(st.find("tensor 'b' holds a non-finite value (nan) at element 1") != std::string::npos);

  const std::vector<std::string> nine(9, "x");
  CHECK(wire::CheckAttached(10, wire::FrameViews(nine.begin(), nine.end()), 1 << 20).message().find(
            "carries 9 frames after its Envelope, at most 8") != std::string::npos);
  CHECK(wire::CheckAttached(10, {data}, 45).message().find("message of 46 bytes exceeds the limit of 45 bytes") !=
        std::string::npos);
  CHECK(wire::CheckAttached(10, {data}, 46).ok());
}

TEST_CASE("CheckLayout compares names and shapes") {
  ParamSet p = Small();
  CHECK(CheckLayout(p.specs, p).ok());
  ParamSet q = p;
  q.specs[1].shape = {4};
  CHECK(CheckLayout(p.specs, q).message().find("tensor 'b' has shape [4], expected [3]") != std::string::npos);
}

TEST_CASE("derived seeds are stable and distinct per purpose and index") {
  CHECK(DeriveSeed(1, "partition", 3) == DeriveSeed(1, "partition", 3));
  CHECK(DeriveSeed(1, "partition", 3) != DeriveSeed(1, "partition", 4));
  CHECK(DeriveSeed(1, "partition", 3) != DeriveSeed(2, "partition", 3));
  CHECK(DeriveSeed(1, "partition", 3) != DeriveSeed(1, "select", 3));
}
