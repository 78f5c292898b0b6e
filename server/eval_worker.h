// One background thread that runs one job at a time (the server's test-set evaluation of round r
// while round r+1 trains). One thread serves the whole run, so memory does not creep with a thread
// (and a malloc arena) per round. Post waits for the previous job; Wait waits for the current one.
#pragma once
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace edgebed {

struct EvalWorker {
  EvalWorker() = default;
  EvalWorker(const EvalWorker&) = delete;  // owns a thread
  EvalWorker& operator=(const EvalWorker&) = delete;
  std::thread thread;
  std::mutex mu;
  std::condition_variable cv;
  std::function<void()> job;
  bool busy = false, quit = false;
  void Run() {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return quit || job; });
      if (!job) return;
      auto j = std::move(job);
      job = nullptr;
      lock.unlock();
      j();
      lock.lock();
      busy = false;
      cv.notify_all();
    }
  }
  void Post(std::function<void()> j) {
    std::unique_lock<std::mutex> lock(mu);
    if (!thread.joinable()) thread = std::thread([this] { Run(); });
    cv.wait(lock, [&] { return !busy; });
    job = std::move(j);
    busy = true;
    cv.notify_all();
  }
  void Wait() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return !busy; });
  }
  ~EvalWorker() {
    {
      std::lock_guard<std::mutex> lock(mu);
      quit = true;
      cv.notify_all();
    }
    if (thread.joinable()) thread.join();
  }
};

}  // namespace edgebed
