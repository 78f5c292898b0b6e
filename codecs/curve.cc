#include "codecs/curve.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "codecs/wire.h"

namespace edgebed {
namespace {

bool IsZ85Key(const std::string& k) {
  if (k.size() != 40) return false;
  uint8_t bin[32];
  return zmq_z85_decode(bin, k.c_str()) != nullptr;
}

// Writes `text` to `path` (mode `mode`) through a temporary file renamed over it.
Status WriteWhole(const std::string& path, const std::string& text, mode_t mode) {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) return Status::IoError("cannot write " + tmp);
  chmod(tmp.c_str(), mode);  // before the secret goes in
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size() && std::fflush(f) == 0 && fsync(fileno(f)) == 0;
  if (std::fclose(f) != 0 || !ok) {
    std::remove(tmp.c_str());
    return Status::IoError("cannot write " + path + " (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return Status::IoError("cannot write " + path + ": rename failed");
  }
  return Status::Ok();
}

// Lines that are not blank or comments (a line starting with '#'), trimmed, with their numbers.
std::vector<std::pair<int, std::string>> Lines(std::istream& in) {
  std::vector<std::pair<int, std::string>> out;
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    const size_t a = line.find_first_not_of(" \t\r"), b = line.find_last_not_of(" \t\r");
    if (a == std::string::npos || line[a] == '#') continue;  // '#' is a Z85 character: comments are whole lines
    out.push_back({n, line.substr(a, b - a + 1)});
  }
  return out;
}

}  // namespace

Result<CurveKeyPair> MakeCurveKeyPair() {
  if (!zmq_has("curve")) return Status::Unavailable("this libzmq was built without CURVE (libsodium)");
  char pub[41], sec[41];
  if (zmq_curve_keypair(pub, sec) != 0) return Status::IoError(std::string("zmq_curve_keypair: ") + zmq_strerror(zmq_errno()));
  return CurveKeyPair{pub, sec};
}

Status WriteCurveKeyPair(const std::string& dir, const std::string& name, const CurveKeyPair& pair) {
  if (name.empty() || name.find_first_of("/\\ \t\n") != std::string::npos)
    return Status::InvalidArgument("key name '" + wire::Printable(name) + "': use letters, digits, '-', '_' and '.'");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError("cannot create " + dir + ": " + ec.message());
  const std::string key = dir + "/" + name + ".key", pub = dir + "/" + name + ".pub";
  if (std::filesystem::exists(key)) return Status::InvalidArgument(key + " exists; remove it first to make a new key pair");
  EDGEBED_RETURN_IF_ERROR(WriteWhole(key, "# edgebed CURVE key pair '" + name + "': keep secret\npublic " + pair.public_key +
                                              "\nsecret " + pair.secret_key + "\n", 0600));
  return WriteWhole(pub, "# edgebed CURVE public key '" + name + "'\npublic " + pair.public_key + "\n", 0644);
}

Result<CurveKeyPair> ReadCurveKeyFile(const std::string& path, bool need_secret) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot read key file " + path);
  CurveKeyPair pair;
  for (const auto& [n, line] : Lines(in)) {
    std::istringstream words(line);
    std::string kind, key, extra;
    words >> kind >> key >> extra;
    const std::string where = path + " line " + std::to_string(n);
    if ((kind != "public" && kind != "secret") || key.empty() || !extra.empty())
      return Status::InvalidArgument(where + ": expected 'public KEY' or 'secret KEY'");
    if (!IsZ85Key(key)) return Status::InvalidArgument(where + ": the " + kind + " key is not 40 Z85 characters");
    (kind == "public" ? pair.public_key : pair.secret_key) = key;
  }
  if (pair.public_key.empty()) return Status::InvalidArgument(path + ": no 'public KEY' line");
  if (need_secret && pair.secret_key.empty())
    return Status::InvalidArgument(path + ": no 'secret KEY' line (give the .key file, not the .pub)");
  struct stat st {};
  if (!pair.secret_key.empty() && stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", st.st_mode & 0777);
    return Status::InvalidArgument(path + ": permissions " + mode + " let others read the secret key; chmod 600 " + path);
  }
  if (!need_secret) pair.secret_key.clear();  // a .key given where a public key is asked: only that half is kept
  return pair;
}

bool AllowEntry::Permits(const std::string& node_id) const {
  if (relay) return true;
  if (!range) return node_id == prefix;
  if (node_id.compare(0, prefix.size(), prefix) != 0 || node_id.size() == prefix.size()) return false;
  const std::string digits = node_id.substr(prefix.size());
  if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 18) return false;
  const uint64_t i = std::stoull(digits);
  return i >= first && i <= last && std::to_string(i) == digits;
}

Result<AllowList> AllowList::Read(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot read the allow-list " + path);
  AllowList list;
  std::map<std::string, int> key_line;
  for (const auto& [n, line] : Lines(in)) {
    const std::string where = path + " line " + std::to_string(n);
    std::istringstream words(line);
    AllowEntry e;
    std::string extra;
    words >> e.public_key >> e.label >> extra;
    if (e.label.empty() || !extra.empty())
      return Status::InvalidArgument(where + ": expected '<public key> <node name, node-A..node-B, or *relay*>'");
    if (!IsZ85Key(e.public_key)) return Status::InvalidArgument(where + ": the public key is not 40 Z85 characters");
    if (auto it = key_line.find(e.public_key); it != key_line.end())
      return Status::InvalidArgument(where + ": this key is already on line " + std::to_string(it->second) + " (one key, one entry)");
    key_line[e.public_key] = n;
    if (e.label == "*relay*") {
      e.relay = true;
    } else if (auto dots = e.label.find(".."); dots != std::string::npos) {
      const std::string a = e.label.substr(0, dots), b = e.label.substr(dots + 2);
      const size_t da = a.find_last_not_of("0123456789") + 1, db = b.find_last_not_of("0123456789") + 1;
      if (da >= a.size() || db >= b.size() || a.substr(0, da) != b.substr(0, db))
        return Status::InvalidArgument(where + ": range '" + e.label + "' must read PREFIXa..PREFIXb, e.g. node-100..node-999");
      e.range = true;
      e.prefix = a.substr(0, da);
      e.first = std::stoull(a.substr(da));
      e.last = std::stoull(b.substr(db));
      if (e.first > e.last) return Status::InvalidArgument(where + ": range '" + e.label + "' runs backwards");
    } else {
      e.prefix = e.label;
      e.first = e.last = 0;
    }
    for (const auto& other : list.entries_) {  // a name belongs to one key, so no node can pose as another
      if (e.relay || other.relay) continue;
      const bool overlap = e.range && other.range ? e.prefix == other.prefix && e.first <= other.last && other.first <= e.last
                           : e.range                ? e.Permits(other.prefix)
                           : other.Permits(e.prefix);
      if (overlap)
        return Status::InvalidArgument(where + ": '" + e.label + "' overlaps '" + other.label + "' of another key; each node name belongs to one key");
    }
    list.entries_.push_back(e);
  }
  if (list.entries_.empty()) return Status::InvalidArgument(path + ": no key; an allow-list that admits nobody is a mistake");
  return list;
}

AllowList AllowList::FromPairs(const std::vector<std::pair<std::string, std::string>>& pairs) {
  AllowList list;
  for (const auto& [key, name] : pairs) {
    AllowEntry e;
    e.public_key = key;
    e.label = e.prefix = name;
    list.entries_.push_back(e);
  }
  return list;
}

const AllowEntry* AllowList::Find(const std::string& public_key) const {
  for (const auto& e : entries_)
    if (e.public_key == public_key) return &e;
  return nullptr;
}

const AllowEntry* AllowList::ByLabel(const std::string& label) const {
  for (const auto& e : entries_)
    if (e.label == label) return &e;
  return nullptr;
}

ZapHandler::ZapHandler(zmq::context_t& ctx, AllowList allow) : sock_(ctx, zmq::socket_type::rep), allow_(std::move(allow)) {
  sock_.bind("inproc://zeromq.zap.01");  // before any CURVE server socket binds: libzmq then asks here
  thread_ = std::thread([this] { Serve(); });
}

ZapHandler::~ZapHandler() {
  stop_ = true;
  thread_.join();
}

void ZapHandler::Reset(AllowList allow) {
  std::lock_guard<std::mutex> lock(mu_);
  allow_ = std::move(allow);
}

void ZapHandler::Serve() {
  zmq::pollitem_t item{sock_.handle(), 0, ZMQ_POLLIN, 0};
  while (!stop_) {
    if (zmq::poll(&item, 1, std::chrono::milliseconds(100)) <= 0) continue;
    std::vector<zmq::message_t> req;
    while (true) {
      zmq::message_t m;
      if (!sock_.recv(m, zmq::recv_flags::dontwait)) break;
      const bool more = m.more();
      req.push_back(std::move(m));
      if (!more) break;
    }
    auto frame = [&](size_t i) { return i < req.size() ? req[i].to_string() : std::string(); };
    std::string status = "400", text = "unknown key", user;
    char z85[41] = {0};
    const std::string mechanism = frame(5), address = frame(3);
    if (mechanism == "CURVE" && req.size() >= 7 && req[6].size() == 32) {
      zmq_z85_encode(z85, static_cast<const uint8_t*>(req[6].data()), 32);
      std::lock_guard<std::mutex> lock(mu_);
      if (const AllowEntry* e = allow_.Find(z85)) {
        status = "200";
        text = "OK";
        user = e->label;
      }
    } else {
      text = "CURVE is required";
    }
    if (status != "200") {
      ++refused_;
      spdlog::warn("refused a connection from {}: {} {} (ZAP {})", wire::Printable(address), mechanism == "CURVE" ? "public key" : "mechanism",
                   mechanism == "CURVE" ? std::string(z85) : wire::Printable(mechanism), text);
    }
    const std::vector<std::string> reply = {"1.0", frame(1), status, text, user, ""};
    for (size_t i = 0; i < reply.size(); ++i)
      sock_.send(zmq::buffer(reply[i]), i + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
}

void MakeCurveServer(zmq::socket_t& sock, const CurveKeyPair& own) {
  sock.set(zmq::sockopt::curve_server, 1);
  sock.set(zmq::sockopt::curve_secretkey, own.secret_key);
  sock.set(zmq::sockopt::curve_publickey, own.public_key);
  sock.set(zmq::sockopt::zap_domain, std::string("edgebed"));
}

void MakeCurveClient(zmq::socket_t& sock, const CurveKeyPair& own, const std::string& server_public_key) {
  sock.set(zmq::sockopt::curve_serverkey, server_public_key);
  sock.set(zmq::sockopt::curve_publickey, own.public_key);
  sock.set(zmq::sockopt::curve_secretkey, own.secret_key);
}

Result<CurveOptions> LoadCurveOptions(const std::string& key_file, const std::string& server_key_file,
                                      const std::string& allow_file, bool accepts_connections) {
  CurveOptions c;
  if (key_file.empty()) {
    if (!server_key_file.empty() || !allow_file.empty())
      return Status::InvalidArgument("--server-key and --allow need --key (this process's own key pair; edgebed keys makes one)");
    return c;
  }
  auto own = ReadCurveKeyFile(key_file, /*need_secret=*/true);
  if (!own.ok()) return Status::InvalidArgument("--key: " + own.status().message());
  c.own = own.value();
  if (!server_key_file.empty()) {
    auto server = ReadCurveKeyFile(server_key_file, /*need_secret=*/false);
    if (!server.ok()) return Status::InvalidArgument("--server-key: " + server.status().message());
    c.server_public_key = server->public_key;
  }
  if (!allow_file.empty()) {
    auto allow = AllowList::Read(allow_file);
    if (!allow.ok()) return Status::InvalidArgument("--allow: " + allow.status().message());
    c.allow = std::make_shared<const AllowList>(std::move(allow).value());
  }
  if (accepts_connections && !c.allow)
    return Status::InvalidArgument("--key without --allow: a process that accepts connections needs the allow-list of node keys");
  return c;
}

Status CheckBindSecurity(const std::string& field, const std::string& endpoint, const CurveOptions& curve) {
  if (curve.enabled() || curve.insecure || IsLoopbackEndpoint(endpoint)) return Status::Ok();
  return Status::InvalidArgument(field + " = '" + endpoint + "' accepts connections from other machines, and there are no keys: " +
                                 "give --key and --allow (edgebed keys makes them) or, on a network you trust, --insecure");
}

bool IsLoopbackEndpoint(const std::string& ep) {
  if (ep.rfind("ipc://", 0) == 0 || ep.rfind("inproc://", 0) == 0) return true;
  if (ep.rfind("tcp://", 0) != 0) return false;
  const std::string host = ep.substr(6, ep.rfind(':') == std::string::npos || ep.rfind(':') < 6 ? std::string::npos : ep.rfind(':') - 6);
  return host.rfind("127.", 0) == 0 || host == "localhost" || host == "[::1]";
}

}  // namespace edgebed
