// CURVE key files, the allow-list that binds keys to node names, and the ZAP handler on real
// sockets over loopback.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "codecs/curve.h"

using namespace edgebed;
namespace fs = std::filesystem;

namespace {

std::string Dir() {
  static const std::string d = [] {
    const std::string p = (fs::temp_directory_path() / ("edgebed-curve-" + std::to_string(getpid()))).string();
    fs::remove_all(p);
    fs::create_directories(p);
    return p;
  }();
  return d;
}

bool Says(const Status& st, const std::string& text) {
  if (st.message().find(text) != std::string::npos) return true;
  MESSAGE("message was: " << st.message());
  return false;
}

std::string Write(const std::string& name, const std::string& text) {
  const std::string p = Dir() + "/" + name;
  std::ofstream(p) << text;
  chmod(p.c_str(), 0600);
  return p;
}

}  // namespace

TEST_CASE("key pairs are written 0600 / 0644, read back, and bad key files are named errors") {
  auto pair = MakeCurveKeyPair();
  REQUIRE(pair.ok());
  CHECK(pair->public_key.size() == 40);
  REQUIRE(WriteCurveKeyPair(Dir(), "node-3", pair.value()).ok());
  struct stat st {};
  REQUIRE(stat((Dir() + "/node-3.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto back = ReadCurveKeyFile(Dir() + "/node-3.key", true);
  REQUIRE(back.ok());
  CHECK(back->public_key == pair->public_key);
  CHECK(back->secret_key == pair->secret_key);
  CHECK(ReadCurveKeyFile(Dir() + "/node-3.pub", false)->public_key == pair->public_key);
  CHECK(Says(ReadCurveKeyFile(Dir() + "/node-3.pub", true).status(), "no 'secret KEY' line (give the .key file, not the .pub)"));
  CHECK(Says(WriteCurveKeyPair(Dir(), "node-3", pair.value()), "node-3.key exists"));  // never overwritten
  CHECK(Says(WriteCurveKeyPair(Dir(), "../x y", pair.value()), "key name"));
  chmod((Dir() + "/node-3.key").c_str(), 0644);
  CHECK(Says(ReadCurveKeyFile(Dir() + "/node-3.key", true).status(), "permissions 0644 let others read the secret key; chmod 600"));
  CHECK(Says(ReadCurveKeyFile(Dir() + "/missing.key", true).status(), "cannot read key file " + Dir() + "/missing.key"));
  CHECK(Says(ReadCurveKeyFile(Write("short.key", "public abc\n"), true).status(), "short.key line 1: the public key is not 40 Z85 characters"));
  CHECK(Says(ReadCurveKeyFile(Write("junk.key", "# c\nhello world\n"), true).status(), "junk.key line 2: expected 'public KEY' or 'secret KEY'"));
  // '#' is a Z85 character: a key holding one is still read whole.
  const std::string hashed = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]#f7";
  CHECK(ReadCurveKeyFile(Write("hash.pub", "public " + hashed + "\n"), false)->public_key == hashed);
}

TEST_CASE("the allow-list binds each key to node names; overlaps, repeats and bad ranges are named by line") {
  const std::string a = MakeCurveKeyPair()->public_key, b = MakeCurveKeyPair()->public_key, c = MakeCurveKeyPair()->public_key;
  auto list = AllowList::Read(Write("ok.allow", "# nodes\n" + a + " node-3\n" + b + " node-100..node-199\n" + c + " *relay*\n"));
  REQUIRE(list.ok());
  CHECK(list->size() == 3);
  const AllowEntry* one = list->Find(a);
  REQUIRE(one);
  CHECK(one->Permits("node-3"));
  CHECK_FALSE(one->Permits("node-30"));
  CHECK_FALSE(one->Permits("node-4"));
  const AllowEntry* host = list->ByLabel("node-100..node-199");
  REQUIRE(host);
  CHECK(host->Permits("node-100"));
  CHECK(host->Permits("node-199"));
  CHECK_FALSE(host->Permits("node-200"));
  CHECK_FALSE(host->Permits("node-099"));  // not the canonical spelling of 99
  CHECK_FALSE(host->Permits("node-1x0"));
  CHECK(list->Find(c)->relay);
  CHECK_FALSE(list->Find(MakeCurveKeyPair()->public_key));
  CHECK(Says(AllowList::Read(Write("twice.allow", a + " node-1\n" + a + " node-2\n")).status(), "twice.allow line 2: this key is already on line 1"));
  CHECK(Says(AllowList::Read(Write("overlap.allow", a + " node-150\n" + b + " node-100..node-199\n")).status(),
             "overlap.allow line 2: 'node-100..node-199' overlaps 'node-150' of another key"));
  CHECK(Says(AllowList::Read(Write("ranges.allow", a + " node-1..node-9\n" + b + " node-5..node-20\n")).status(), "overlaps"));
  CHECK(Says(AllowList::Read(Write("back.allow", a + " node-9..node-1\n")).status(), "runs backwards"));
  CHECK(Says(AllowList::Read(Write("mixed.allow", a + " node-1..host-9\n")).status(), "must read PREFIXa..PREFIXb"));
  CHECK(Says(AllowList::Read(Write("badkey.allow", "abc node-1\n")).status(), "badkey.allow line 1: the public key is not 40 Z85"));
  CHECK(Says(AllowList::Read(Write("empty.allow", "# nobody\n")).status(), "admits nobody"));
}

TEST_CASE("CURVE links: an allow-listed key gets through with its label, any other key and a plain socket do not") {
  zmq::context_t ctx(1);
  const CurveKeyPair server = MakeCurveKeyPair().value(), good = MakeCurveKeyPair().value(), bad = MakeCurveKeyPair().value();
  auto allow = AllowList::Read(Write("link.allow", good.public_key + " node-7\n"));
  REQUIRE(allow.ok());
  ZapHandler zap(ctx, allow.value());
  zmq::socket_t router(ctx, zmq::socket_type::router);
  MakeCurveServer(router, server);
  router.bind("tcp://127.0.0.1:*");
  const std::string ep = router.get(zmq::sockopt::last_endpoint);
  auto client = [&](const CurveKeyPair* key, const std::string& id) {
    auto s = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
    s->set(zmq::sockopt::routing_id, id);
    s->set(zmq::sockopt::linger, 0);
    if (key) MakeCurveClient(*s, *key, server.public_key);
    s->connect(ep);
    (void)s->send(zmq::str_buffer("hello"), zmq::send_flags::dontwait);
    return s;
  };
  auto ok = client(&good, "a"), intruder = client(&bad, "b"), plain = client(nullptr, "c");
  std::vector<std::string> from, users;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (std::chrono::steady_clock::now() < until) {  // a deadline for the refused ones to show
    zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(100)) <= 0) continue;
    zmq::message_t id, body;
    (void)router.recv(id);
    (void)router.recv(body);
    from.push_back(id.to_string());
    users.push_back(body.gets("User-Id"));
  }
  CHECK(from == std::vector<std::string>{"a"});
  CHECK(users == std::vector<std::string>{"node-7"});
  CHECK(zap.refused() >= 1);  // the intruder's key (the plain socket fails before ZAP: another mechanism)
}

TEST_CASE("binding an address other machines reach needs keys or --insecure; flags come in pairs") {
  CurveOptions none;
  CHECK(CheckBindSecurity("server.bind", "tcp://127.0.0.1:5555", none).ok());
  CHECK(CheckBindSecurity("server.bind", "ipc:///tmp/x", none).ok());
  CHECK(Says(CheckBindSecurity("server.bind", "tcp://0.0.0.0:5555", none),
             "server.bind = 'tcp://0.0.0.0:5555' accepts connections from other machines, and there are no keys"));
  CHECK(Says(CheckBindSecurity("--listen", "tcp://10.0.0.1:5600", none), "--listen = 'tcp://10.0.0.1:5600'"));
  none.insecure = true;
  CHECK(CheckBindSecurity("server.bind", "tcp://0.0.0.0:5555", none).ok());
  CHECK(Says(LoadCurveOptions("", "", Dir() + "/ok.allow", true).status(), "--server-key and --allow need --key"));
  REQUIRE(WriteCurveKeyPair(Dir(), "srv", MakeCurveKeyPair().value()).ok());
  CHECK(Says(LoadCurveOptions(Dir() + "/srv.key", "", "", true).status(), "--key without --allow"));
  CHECK(Says(LoadCurveOptions(Dir() + "/srv.pub", "", "", false).status(), "--key: "));
  auto loaded = LoadCurveOptions(Dir() + "/srv.key", Dir() + "/srv.pub", Dir() + "/ok.allow", true);
  REQUIRE(loaded.ok());
  CHECK(loaded->enabled());
  CHECK(CheckBindSecurity("server.bind", "tcp://0.0.0.0:5555", loaded.value()).ok());
}
