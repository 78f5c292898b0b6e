#include "channel/modem.h"

#include <complex>
// clang-format off
#include <liquid/liquid.h>
// clang-format on

namespace edgebed {
namespace {

struct Named {
  const char* name;
  int value;
};
const Named kModulations[] = {{"bpsk", LIQUID_MODEM_BPSK}, {"qpsk", LIQUID_MODEM_QPSK},
                              {"qam16", LIQUID_MODEM_QAM16}, {"qam64", LIQUID_MODEM_QAM64}};
const Named kFecs[] = {{"none", LIQUID_FEC_NONE},           {"rep3", LIQUID_FEC_REP3},
                       {"rep5", LIQUID_FEC_REP5},           {"hamming74", LIQUID_FEC_HAMMING74},
                       {"hamming84", LIQUID_FEC_HAMMING84}, {"hamming128", LIQUID_FEC_HAMMING128},
                       {"golay2412", LIQUID_FEC_GOLAY2412}, {"secded2216", LIQUID_FEC_SECDED2216},
                       {"secded3932", LIQUID_FEC_SECDED3932}, {"secded7264", LIQUID_FEC_SECDED7264}};

template <size_t N>
std::vector<std::string> Names(const Named (&table)[N]) {
  std::vector<std::string> v;
  for (const auto& n : table) v.push_back(n.name);
  return v;
}
template <size_t N>
int Lookup(const Named (&table)[N], const std::string& name) {
  for (const auto& n : table)
    if (name == n.name) return n.value;
  return -1;
}
std::string JoinNames(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

}  // namespace

const std::vector<std::string>& ModulationNames() {
  static const auto v = Names(kModulations);
  return v;
}
const std::vector<std::string>& FecNames() {
  static const auto v = Names(kFecs);
  return v;
}

Result<std::unique_ptr<Modem>> Modem::Create(const std::string& name) {
  const int scheme = Lookup(kModulations, name);
  if (scheme < 0)
    return Status::InvalidArgument("channel.modulation = '" + name + "' is unknown; allowed: " +
                                   JoinNames(ModulationNames()));
  std::unique_ptr<Modem> m(new Modem());
  modemcf q = modemcf_create(static_cast<modulation_scheme>(scheme));
  m->q_ = q;
  m->bps_ = modemcf_get_bps(q);
  double es = 0.0;
  const unsigned M = 1u << m->bps_;
  for (unsigned s = 0; s < M; ++s) es += std::norm(m->Modulate(s));
  m->es_ = static_cast<float>(es / M);
  return m;
}

Modem::~Modem() {
  if (q_) modemcf_destroy(static_cast<modemcf>(q_));
}

cfloat Modem::Modulate(unsigned symbol) {
  liquid_float_complex y;
  modemcf_modulate(static_cast<modemcf>(q_), symbol, &y);
  return y;
}

unsigned Modem::Demodulate(cfloat x) {
  unsigned s = 0;
  modemcf_demodulate(static_cast<modemcf>(q_), x, &s);
  return s;
}

Result<std::unique_ptr<Packetizer>> Packetizer::Create(uint32_t payload_bytes, const std::string& fec) {
  const int f = Lookup(kFecs, fec);
  if (f < 0) return Status::InvalidArgument("channel.fec = '" + fec + "' is unknown; allowed: " + JoinNames(FecNames()));
  if (payload_bytes == 0) return Status::InvalidArgument("channel.packet_bytes must be >= 1");
  std::unique_ptr<Packetizer> p(new Packetizer());
  packetizer q = packetizer_create(payload_bytes, LIQUID_CRC_32, f, LIQUID_FEC_NONE);
  p->p_ = q;
  p->payload_ = payload_bytes;
  p->encoded_ = packetizer_get_enc_msg_len(q);
  return p;
}

Packetizer::~Packetizer() {
  if (p_) packetizer_destroy(static_cast<packetizer>(p_));
}

void Packetizer::Encode(const uint8_t* payload, uint8_t* packet) {
  packetizer_encode(static_cast<packetizer>(p_), payload, packet);
}

bool Packetizer::Decode(const uint8_t* packet, uint8_t* payload) {
  return packetizer_decode(static_cast<packetizer>(p_), packet, payload) == 1;
}

}  // namespace edgebed
