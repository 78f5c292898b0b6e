// What the gnn suites share: a small CSBM configuration, and the shards of a layout trained in
// threads over an in-memory transport (tests/e2e runs them as processes over ZeroMQ).
#pragma once
#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "gnn/gnn_model.h"
#include "gnn/graph.h"

namespace edgebed::gnn_test {

inline GnnConfig SmallConfig(const std::string& mode, uint32_t parts, uint32_t chunks) {
  GnnConfig c;
  c.graph.kind = "csbm";
  c.graph.vertices = 600;
  c.graph.classes = 3;
  c.graph.features = 8;
  c.graph.avg_degree = 6.0;
  c.graph.homophily = 0.7;
  c.mode = mode;
  c.layers = 4;
  c.hidden = 16;
  c.parts = parts;
  c.chunks = chunks;
  c.learning_rate = 0.01;
  c.seed = 7;
  return c;
}

// Shards in threads: Send puts a tensor in the receiver's box; Receive waits for the one it needs.
class Mailboxes {
 public:
  explicit Mailboxes(uint32_t n) : boxes_(n) {}
  class Port : public PeerTransport {
   public:
    Port(Mailboxes* m, uint32_t self) : m_(m), self_(self) {}
    Status Send(uint32_t to, const PeerTensor& t) override {
      std::lock_guard<std::mutex> l(m_->mu_);
      m_->boxes_[to][{t.from, static_cast<int>(t.kind), t.epoch, t.step}] = t;
      values[static_cast<int>(t.kind)] += t.values.size();
      m_->cv_.notify_all();
      return Status::Ok();
    }
    Status Receive(uint32_t from, TensorKind kind, uint32_t epoch, uint32_t step, PeerTensor* out) override {
      std::unique_lock<std::mutex> l(m_->mu_);
      const auto key = std::make_tuple(from, static_cast<int>(kind), epoch, step);
      auto& box = m_->boxes_[self_];
      if (!m_->cv_.wait_for(l, std::chrono::seconds(60), [&] { return box.count(key) > 0; }))
        return Status::Timeout("no tensor");
      *out = std::move(box[key]);
      box.erase(key);
      return Status::Ok();
    }
    uint64_t values[kTensorKinds] = {0, 0, 0, 0};

   private:
    Mailboxes* m_;
    uint32_t self_;
  };

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::map<std::tuple<uint32_t, int, uint32_t, uint32_t>, PeerTensor>> boxes_;
};

struct Trained {
  std::vector<float> params;  // the shards' parameters, concatenated in shard order
  std::vector<ShardStats> last;  // every shard's stats of the last epoch
  uint64_t values[kTensorKinds] = {0, 0, 0, 0};  // sent during the last epoch, all shards
};

// Trains `epochs` epochs with every shard of cfg's layout in its own thread.
inline Trained Train(const Graph& g, const GnnConfig& cfg, uint32_t epochs) {
  const uint32_t n = cfg.shards();
  std::vector<std::unique_ptr<GnnShard>> shards;
  for (uint32_t i = 0; i < n; ++i) {
    auto s = GnnShard::Create(g, cfg, i);
    REQUIRE_MESSAGE(s.ok(), s.status().message());
    shards.push_back(std::move(s.value()));
  }
  Trained out;
  out.last.resize(n);
  for (uint32_t e = 1; e <= epochs; ++e) {
    Mailboxes boxes(n);
    std::vector<std::unique_ptr<Mailboxes::Port>> ports;
    for (uint32_t i = 0; i < n; ++i) ports.push_back(std::make_unique<Mailboxes::Port>(&boxes, i));
    std::vector<Status> st(n);
    std::vector<std::thread> threads;
    for (uint32_t i = 0; i < n; ++i)
      threads.emplace_back([&, i] {
        ShardStats s;
        st[i] = shards[i]->TrainEpoch(e, ports[i].get(), {}, &s);
        out.last[i] = s;
      });
    for (auto& t : threads) t.join();
    for (uint32_t i = 0; i < n; ++i) REQUIRE_MESSAGE(st[i].ok(), st[i].message());
    if (e == epochs)
      for (auto& p : ports)
        for (int k = 0; k < kTensorKinds; ++k) out.values[k] += p->values[k];
  }
  for (auto& s : shards) {
    auto p = s->Parameters();
    out.params.insert(out.params.end(), p.begin(), p.end());
  }
  return out;
}

inline Graph SmallGraph(const GnnConfig& c) {
  auto g = LoadGraph(c, "");
  REQUIRE_MESSAGE(g.ok(), g.status().message());
  return std::move(g.value());
}

}  // namespace edgebed::gnn_test
