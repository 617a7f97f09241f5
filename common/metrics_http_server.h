#ifndef CHAT_COMMON_METRICS_HTTP_SERVER_H_
#define CHAT_COMMON_METRICS_HTTP_SERVER_H_

// The smallest HTTP/1.1 server that Prometheus can scrape: one I/O thread
// (Asio, asynchronous, so a slow client holds no thread), one request per
// connection. It reads the request line and headers (at most 8 KiB, within
// 10 s), answers `GET /metrics` with the registry's text and any other path
// with 404, then closes. It is for a private port: no TLS, no keep-alive.

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace chat {

class MetricsHttpServer {
 public:
  // What GET /metrics answers, rendered per request on the I/O thread.
  using Render = std::function<std::string()>;

  // Listens on `host`:`port` (port 0: one the OS picks) and starts the I/O
  // thread. kUnavailable if the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      absl::string_view host, int port, Render render);

  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;
  // Closes the listener and every connection, and joins the I/O thread.
  ~MetricsHttpServer();

  int port() const;

 private:
  class Impl;
  explicit MetricsHttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// "HTTP/1.1 ..." answer (head and body) to a request whose request line is
// `request_line` ("GET /metrics HTTP/1.1"). Exposed for tests.
std::string MetricsHttpResponse(absl::string_view request_line,
                                const MetricsHttpServer::Render& render);

}  // namespace chat

#endif  // CHAT_COMMON_METRICS_HTTP_SERVER_H_
