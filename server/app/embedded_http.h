#ifndef CHAT_SERVER_APP_EMBEDDED_HTTP_H_
#define CHAT_SERVER_APP_EMBEDDED_HTTP_H_

// chat-server's own REST/JSON port (--http_listen): chat-gateway's HTTP server
// and Gateway handler, the same routes, run inside chat-server and calling it
// through grpc::Server::InProcessChannel, or for Chat, ChatStream and
// ResumeStream without any gRPC call.
// One process for a single machine: no loopback TCP hop, no second process's
// gRPC client and server legs. The separate chat-gateway stays for HTTPS,
// backend TLS and scale-out.

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/flag_config.h"
#include "gateway/app/gateway.h"
#include "gateway/http/http_server.h"
#include "grpcpp/server.h"

namespace chat {

struct EmbeddedHttpOptions {
  // --http_listen as given (for the log); empty: no HTTP port.
  std::string listen;
  HostPort address;
  // chat-gateway's defaults, but for what the --http_* flags set.
  gateway::HttpServerOptions http;
  gateway::GatewayOptions gateway;
  // --http_allow_anonymous: serve on a non-loopback --http_listen even though
  // --allow_anonymous lets callers without a key in from any host.
  bool allow_anonymous = false;
};

// chat-gateway's safe default, for the embedded port: FAILED_PRECONDITION,
// saying what to do, if `http` listens off loopback while chat-server serves
// callers without an API key from any host (`anonymous_remote_allowed`, the
// answer chat-gateway gets from GetAuthPolicy) and --http_allow_anonymous is
// not set. Without --allow_anonymous a remote HTTP caller needs a key anyway:
// chat-server judges the address the gateway forwards (x-forwarded-for), not
// the in-process channel's peer.
absl::Status CheckEmbeddedHttpSafeDefault(const EmbeddedHttpOptions& http,
                                          bool anonymous_remote_allowed);

class HealthWatch;
class ChatServiceImpl;

// The running port. Handle() runs on its I/O threads; Start, Shutdown and
// the destructor are main's.
class EmbeddedHttp {
 public:
  // Binds options.address and serves chat-gateway's routes (ChatService's and
  // AdminService's) through `server`'s in-process channel, but for Chat,
  // ChatStream and ResumeStream, the routes of every /chat, its streams and
  // their resumes, which `chat_service` answers directly
  // (ChatServiceImpl::ChatLocal, ChatStreamLocal and ResumeStreamLocal).
  // `server` must be started; both must outlive the returned object.
  // UNAVAILABLE if the port cannot be bound (in use, address not local),
  // INTERNAL if the route table cannot be built.
  static absl::StatusOr<std::unique_ptr<EmbeddedHttp>> Start(
      grpc::Server& server, ChatServiceImpl* chat_service,
      EmbeddedHttpOptions options);
  EmbeddedHttp(const EmbeddedHttp&) = delete;
  EmbeddedHttp& operator=(const EmbeddedHttp&) = delete;
  // Shutdown(now) if not done yet.
  ~EmbeddedHttp();

  // The bound port (the OS's pick for port 0).
  int port() const { return port_; }
  int route_count() const { return route_count_; }

  // Graceful stop, as chat-gateway does it on SIGTERM: stops accepting (new
  // requests on open connections answer 503), lets running requests (streams
  // included) finish until `deadline`, cancels the rest, waits (up to 10 s)
  // for their calls to end and stops the I/O threads; a local Chat answered
  // later still finds its gateway, which lives until destruction. Call before
  // the gRPC server's Shutdown, which would otherwise refuse the calls these
  // requests still make. Idempotent.
  void Shutdown(absl::Time deadline);

 private:
  EmbeddedHttp() = default;

  int port_ = 0;
  int route_count_ = 0;
  bool stopped_ = false;
  // Declared in the order they are built; destroyed in reverse, so the HTTP
  // server's threads stop before the handler they call goes away.
  std::unique_ptr<HealthWatch> health_;
  std::unique_ptr<gateway::Gateway> gateway_;
  std::unique_ptr<gateway::HttpServer> server_;
};

}  // namespace chat

#endif  // CHAT_SERVER_APP_EMBEDDED_HTTP_H_
