#include "server/server_optimizer.h"

#include <cmath>
#include <cstring>

namespace edgebed {

Result<std::unique_ptr<ServerOptimizer>> ServerOptimizer::Create(const ServerOptimizerOptions& opt) {
  if (opt.kind != "none" && opt.kind != "momentum" && opt.kind != "adagrad" && opt.kind != "adam" && opt.kind != "yogi")
    return Status::InvalidArgument("server optimiser '" + opt.kind + "' is unknown; allowed: none, momentum, adagrad, adam, yogi");
  if (!(opt.lr > 0.0 && opt.lr <= 10.0)) return Status::InvalidArgument("federation.server_lr must be in (0, 10]");
  if (!(opt.momentum >= 0.0 && opt.momentum < 1.0)) return Status::InvalidArgument("federation.server_momentum must be in [0, 1)");
  if (!(opt.beta1 >= 0.0 && opt.beta1 < 1.0)) return Status::InvalidArgument("federation.beta1 must be in [0, 1)");
  if (!(opt.beta2 >= 0.0 && opt.beta2 < 1.0)) return Status::InvalidArgument("federation.beta2 must be in [0, 1)");
  if (!(opt.tau > 0.0 && opt.tau <= 1.0)) return Status::InvalidArgument("federation.tau must be in (0, 1]");
  return std::unique_ptr<ServerOptimizer>(new ServerOptimizer(opt));
}

Status ServerOptimizer::Step(const std::vector<float>& delta, std::vector<float>* x) {
  if (delta.size() != x->size())
    return Status::InvalidArgument("server optimiser: the update has " + std::to_string(delta.size()) + " values, the model " +
                                   std::to_string(x->size()));
  const size_t n = delta.size();
  const double lr = opt_.lr;
  if (opt_.kind == "none") {
    for (size_t i = 0; i < n; ++i) (*x)[i] += static_cast<float>(lr * delta[i]);
    return Status::Ok();
  }
  if (opt_.kind == "momentum") {
    if (v_.size() != n) v_.assign(n, 0.0f);
    for (size_t i = 0; i < n; ++i) {
      v_[i] = static_cast<float>(opt_.momentum * v_[i] + delta[i]);
      (*x)[i] += static_cast<float>(lr * v_[i]);
    }
    return Status::Ok();
  }
  const double b1 = opt_.beta1, b2 = opt_.beta2, tau = opt_.tau;
  if (m_.size() != n) m_.assign(n, 0.0f);
  if (v_.size() != n) v_.assign(n, static_cast<float>(tau * tau));
  for (size_t i = 0; i < n; ++i) {
    const double d = delta[i], d2 = d * d;
    const double m = b1 * m_[i] + (1.0 - b1) * d;
    double v = v_[i];
    if (opt_.kind == "adagrad") v += d2;
    else if (opt_.kind == "adam") v = b2 * v + (1.0 - b2) * d2;
    else v -= (1.0 - b2) * d2 * (v > d2 ? 1.0 : v < d2 ? -1.0 : 0.0);  // yogi
    m_[i] = static_cast<float>(m);
    v_[i] = static_cast<float>(v);
    (*x)[i] += static_cast<float>(lr * m / (std::sqrt(std::max(v, 0.0)) + tau));
  }
  return Status::Ok();
}

std::string ServerOptimizer::Save() const {
  if (opt_.kind == "none") return {};
  std::string out = "EBOPT1 " + opt_.kind + "\n";
  const uint64_t nm = m_.size(), nv = v_.size();
  out.append(reinterpret_cast<const char*>(&nm), 8);
  out.append(reinterpret_cast<const char*>(&nv), 8);
  out.append(reinterpret_cast<const char*>(m_.data()), nm * 4);
  out.append(reinterpret_cast<const char*>(v_.data()), nv * 4);
  return out;
}

Status ServerOptimizer::Load(const std::string& bytes) {
  if (opt_.kind == "none")
    return bytes.empty() ? Status::Ok() : Status::InvalidArgument("the checkpoint holds server optimiser state; this run has none");
  const std::string head = "EBOPT1 " + opt_.kind + "\n";
  if (bytes.compare(0, head.size(), head) != 0)
    return Status::InvalidArgument("the checkpoint's server optimiser state is not for '" + opt_.kind + "'");
  uint64_t nm = 0, nv = 0;
  if (bytes.size() < head.size() + 16) return Status::Corruption("the checkpoint's server optimiser state is cut short");
  std::memcpy(&nm, bytes.data() + head.size(), 8);
  std::memcpy(&nv, bytes.data() + head.size() + 8, 8);
  if (nm > (1ull << 34) || nv > (1ull << 34) || bytes.size() != head.size() + 16 + 4 * (nm + nv))
    return Status::Corruption("the checkpoint's server optimiser state has the wrong size");
  m_.resize(nm);
  v_.resize(nv);
  std::memcpy(m_.data(), bytes.data() + head.size() + 16, nm * 4);
  std::memcpy(v_.data(), bytes.data() + head.size() + 16 + nm * 4, nv * 4);
  return Status::Ok();
}

}  // namespace edgebed
