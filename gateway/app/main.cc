// chat-gateway: REST/JSON in front of chat-server. Serves the routes of the
// proto's google.api.http annotations over HTTP/1.1, transcoded to gRPC
// calls on chat-server, until SIGINT or SIGTERM.

#include <signal.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage_config.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "chat/v1/chat.pb.h"
#include "gateway/app/backend_channel.h"
#include "gateway/app/gateway.h"
#include "gateway/http/http_server.h"
#include "gateway/transcode/routes.h"
#include "common/logging.h"
#include "common/process_setup.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:8000",
          "HTTP address to serve (HOST:PORT; port 0 picks a free one, logged "
          "at start)");
ABSL_FLAG(std::string, backend, "127.0.0.1:50051",
          "chat-server address, or several comma-separated IP:PORT addresses "
          "(round-robin over the healthy ones)");
ABSL_FLAG(int64_t, max_body_bytes, 1 << 20,
          "largest request body; larger ones are answered 413");
ABSL_FLAG(absl::Duration, request_timeout, absl::Minutes(5),
          "deadline of each gRPC call (a shorter Grpc-Timeout header wins)");
ABSL_FLAG(absl::Duration, read_timeout, absl::Seconds(30),
          "time to receive a request, and idle time before a keep-alive "
          "connection is closed");
ABSL_FLAG(std::string, cors_origins, "",
          "origins allowed to call from a browser: comma-separated, or *; "
          "empty: none");
ABSL_FLAG(int, io_threads, 2, "threads serving HTTP connections");
ABSL_FLAG(bool, access_log, false,
          "log one line per request: method, target, status, duration, "
          "request id");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(10),
          "how long running requests may finish after SIGTERM");
ABSL_FLAG(std::string, web_root, "",
          "directory with web/index.html and js/chat-client.js, served at "
          "/web/ and /js/chat-client.js (e.g. the repository's clients/)");

namespace {

// The flags chat-gateway reads; each can also be set in the environment as
// CHAT_GATEWAY_<NAME> (CHAT_GATEWAY_BACKEND, ...), the command line winning.
// Not CHAT_<NAME>: chat-server reads those, and both often share a shell.
constexpr const char* kGatewayFlagNames[] = {
    "listen",        "backend",     "max_body_bytes", "request_timeout",
    "read_timeout",  "cors_origins", "io_threads",    "web_root",
    "access_log",    "shutdown_grace"};

// Sets each flag whose CHAT_GATEWAY_<NAME> variable is present; false
// (after printing why) if a value does not parse.
bool ApplyEnvironmentToFlags() {
  bool ok = true;
  for (const char* name : kGatewayFlagNames) {
    std::string variable = absl::StrCat("CHAT_GATEWAY_", absl::AsciiStrToUpper(name));
    const char* value = std::getenv(variable.c_str());
    if (value == nullptr) continue;
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    std::string error;
    if (flag == nullptr || !flag->ParseFrom(value, &error)) {
      std::fprintf(stderr, "chat-gateway: bad value in %s: %s\n", variable.c_str(),
                   error.c_str());
      ok = false;
    }
  }
  return ok;
}

// Each open HTTP connection holds a descriptor, and the usual soft limit
// (1024) is far below the streams we design for; raise it to the hard limit,
// as Go's runtime and nginx's worker_rlimit_nofile do.
void RaiseDescriptorLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    chat::LogWarning("cannot raise the descriptor limit; connections are capped at ",
                     limit.rlim_cur);
  }
}

int Run() {
  const sigset_t stop_signals = chat::BlockStopSignals();
  RaiseDescriptorLimit();
  const std::string listen = absl::GetFlag(FLAGS_listen);
  const size_t colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    chat::LogError("--listen must be HOST:PORT; got ", listen);
    return 1;
  }
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);

  absl::StatusOr<chat::gateway::RouteTable> routes =
      chat::gateway::RouteTable::FromServices(
          {chat::v1::ChatRequest::descriptor()->file()->FindServiceByName("ChatService")});
  if (!routes.ok()) {
    chat::LogError(routes.status().ToString());
    return 1;
  }
  const std::string backend = absl::GetFlag(FLAGS_backend);
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      chat::gateway::MakeBackendChannel(backend);
  if (!channel.ok()) {
    chat::LogError(channel.status().ToString());
    return 1;
  }
  const size_t route_count = routes->routes().size();

  chat::gateway::GatewayOptions options;
  options.request_timeout = absl::GetFlag(FLAGS_request_timeout);
  options.cors_origins = absl::GetFlag(FLAGS_cors_origins);
  options.web_root = absl::GetFlag(FLAGS_web_root);
  chat::gateway::Gateway gateway(*channel, *std::move(routes), options);

  chat::gateway::HttpServerOptions http_options;
  const int64_t max_body = absl::GetFlag(FLAGS_max_body_bytes);
  if (max_body < 1) {
    chat::LogError("--max_body_bytes must be at least 1");
    return 1;
  }
  http_options.max_body_bytes = static_cast<size_t>(max_body);
  http_options.read_timeout = absl::GetFlag(FLAGS_read_timeout);
  http_options.io_threads = absl::GetFlag(FLAGS_io_threads);
  http_options.access_log = absl::GetFlag(FLAGS_access_log);
  chat::gateway::HttpServer server(
      http_options, [&gateway](std::shared_ptr<chat::gateway::HttpExchange> e) {
        gateway.Handle(std::move(e));
      });
  absl::StatusOr<int> bound = server.Start(host, port);
  if (!bound.ok()) {
    chat::LogError(bound.status().ToString());
    return 1;
  }
  chat::LogInfo("chat-gateway listening on ", listen.substr(0, colon), ":",
                *bound, " (backend ", backend, ", ", route_count, " routes)");

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  const absl::Duration grace = absl::GetFlag(FLAGS_shutdown_grace);
  chat::LogInfo("received ", strsignal(signal_number),
                "; finishing running requests (up to ",
                absl::FormatDuration(grace), ")");
  // Running requests (streams included) get the grace period; then the
  // rest are cancelled. The I/O threads stop only once no gRPC callback can
  // reach them any more.
  server.StopAccepting();
  if (!server.WaitIdle(grace)) {
    chat::LogInfo("cancelling the requests still running");
  }
  gateway.CancelAll();
  gateway.WaitIdle(absl::Seconds(10));
  server.WaitIdle(absl::Seconds(1));  // Lets the last answers be written.
  server.Stop();
  chat::LogInfo("chat-gateway stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  chat::DisableMutexDeadlockDetection();
  absl::FlagsUsageConfig config;
  // --help lists this binary's own flags, not those of linked libraries.
  config.contains_help_flags = [](absl::string_view file) {
    return absl::StrContains(file, "gateway/");
  };
  absl::SetFlagsUsageConfig(config);
  absl::SetProgramUsageMessage(
      "REST/JSON gateway to chat-server.\n"
      "Every flag can also be set in the environment as CHAT_GATEWAY_<FLAG NAME "
      "IN CAPITALS>\n(for example CHAT_GATEWAY_BACKEND=10.0.0.5:50051); the "
      "command line wins.\n"
      "Usage: chat-gateway [--listen=HOST:PORT] [--backend=HOST:PORT[,...]] ...");
  if (!ApplyEnvironmentToFlags()) return 2;
  absl::ParseCommandLine(argc, argv);
  return Run();
}
