#include "tools/server_cmd.h"

#include <signal.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <filesystem>
#include <iostream>

#include "record/files.h"
#include "server/server.h"

namespace edgebed {
namespace {

std::atomic<Server*> g_server{nullptr};
volatile sig_atomic_t g_signalled = 0;
void OnSignal(int) {
  g_signalled = 1;
  if (Server* s = g_server.load()) s->RequestStop();
}

}  // namespace

int RunServerCommand(const Scenario& sc, const KeyFlags& server_keys, const std::string& resume_dir, const std::string& endpoint_file) {
  std::error_code ec;
  std::filesystem::create_directories(sc.output_dir + "/logs", ec);
  if (ec) {
    spdlog::error("output_dir = '{}': cannot create {}/logs: {}", sc.output_dir, sc.output_dir, ec.message());
    return 2;
  }
  try {  // a resumed run's log goes on where it stopped
    auto file_sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(sc.output_dir + "/logs/server.log", resume_dir.empty());
    auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    auto logger = std::make_shared<spdlog::logger>("server", spdlog::sinks_init_list{console, file_sink});
    logger->set_pattern("%H:%M:%S.%e %^%l%$ %v");
    spdlog::set_default_logger(logger);
  } catch (const spdlog::spdlog_ex& e) {
    spdlog::error("output_dir = '{}': cannot write {}/logs/server.log: {}", sc.output_dir, sc.output_dir, e.what());
    return 2;
  }
  // A log write that fails (a full disk) is reported once on stderr, never silently dropped.
  spdlog::default_logger()->set_error_handler([](const std::string& msg) {
    static bool told = false;
    if (!told) std::cerr << "edgebed server: cannot write the log (" << msg << "); results are still checked\n";
    told = true;
  });
  // Signals ask for a stop in every phase: loading, waiting for joins, rounds.
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  auto curve = LoadKeyFlags(server_keys, true);
  if (!curve.ok()) {
    spdlog::error("{}", curve.status().message());
    return 2;
  }
  if (Status st = CheckBindSecurity("server.bind", sc.bind, curve.value()); !st.ok()) {
    spdlog::error("{}", st.message());  // before the data and model load: a refusal should be quick
    return 2;
  }
  auto srv = Server::Create(sc);
  if (!srv.ok()) {
    spdlog::error("{}", srv.status().message());
    return 2;
  }
  g_server = srv.value().get();
  if (g_signalled) srv.value()->RequestStop();  // a signal while loading
  if (!resume_dir.empty()) {
    if (Status st = srv.value()->Resume(); !st.ok()) {
      spdlog::error("--resume {}: {}", resume_dir, st.message());
      return 2;
    }
  }
  auto ep = srv.value()->Bind(curve.value());
  if (!ep.ok()) {
    spdlog::error("{}", ep.status().message());
    return 2;
  }
  if (!endpoint_file.empty()) {
    if (Status st = WriteFileAtomic(endpoint_file, ep.value() + "\n"); !st.ok()) {
      spdlog::error("--endpoint-file: {}", st.message());
      return 2;
    }
  }
  Status st = srv.value()->Run();
  g_server = nullptr;
  if (!st.ok()) {
    spdlog::error("{}", st.ToString());
    return 1;
  }
  return 0;
}

}  // namespace edgebed
