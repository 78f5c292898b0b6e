// RAII wrappers over the liquid-dsp objects the digital uplink uses: a linear modem (modemcf) and a
// packetizer (CRC-32 + forward error correction). Include <complex> before liquid.h (see ota.md).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "channel/gaussian.h"
#include "codecs/status.h"

namespace edgebed {

class Modem {
 public:
  // "bpsk" | "qpsk" | "qam16" | "qam64"; errors name channel.modulation.
  static Result<std::unique_ptr<Modem>> Create(const std::string& name);
  ~Modem();
  Modem(const Modem&) = delete;  // owns a liquid modemcf: one owner, one destroy
  Modem& operator=(const Modem&) = delete;
  unsigned bps() const { return bps_; }
  float symbol_energy() const { return es_; }  // mean |x|^2 over the constellation
  cfloat Modulate(unsigned symbol);
  unsigned Demodulate(cfloat x);               // hard decision

 private:
  Modem() = default;
  void* q_ = nullptr;  // modemcf
  unsigned bps_ = 0;
  float es_ = 1.0f;
};

class Packetizer {
 public:
  // `payload_bytes` per packet, CRC-32, inner FEC `fec` (liquid's name set; errors name channel.fec).
  static Result<std::unique_ptr<Packetizer>> Create(uint32_t payload_bytes, const std::string& fec);
  ~Packetizer();
  Packetizer(const Packetizer&) = delete;  // owns a liquid packetizer: one owner, one destroy
  Packetizer& operator=(const Packetizer&) = delete;
  uint32_t payload_bytes() const { return payload_; }
  uint32_t encoded_bytes() const { return encoded_; }
  void Encode(const uint8_t* payload, uint8_t* packet);
  bool Decode(const uint8_t* packet, uint8_t* payload);  // true when the CRC passes

 private:
  Packetizer() = default;
  void* p_ = nullptr;  // packetizer
  uint32_t payload_ = 0, encoded_ = 0;
};

// The FEC names liquid-dsp 1.5.0 in Debian supports (no convolutional or Reed-Solomon codes).
const std::vector<std::string>& FecNames();
const std::vector<std::string>& ModulationNames();

}  // namespace edgebed
