#ifndef CHAT_GATEWAY_HTTP_HTTP_SERVER_H_
#define CHAT_GATEWAY_HTTP_HTTP_SERVER_H_

// An asynchronous HTTP/1.1 server on Boost.Beast and Asio, shaped like
// boostorg/beast example/http/server/async/http_server_async.cpp: a few I/O
// threads run every connection, each connection's work is serialized on its
// own strand, and an idle keep-alive connection or an open stream costs a
// socket and some memory, never a thread.
//
// One request per connection is in flight at a time: the next request is
// read only after the answer to the previous one is fully written, so
// pipelined requests are answered in order (RFC 9112 section 9.3.2).

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/ssl/context.hpp"
#include "boost/beast/http/message.hpp"
#include "boost/beast/http/string_body.hpp"

namespace chat::gateway {

using HttpRequest =
    boost::beast::http::request<boost::beast::http::string_body>;
using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

class Connection;
class ConnectionLimiter;

// One request and the means to answer it, handed to the handler. Answer
// with exactly one Respond(), or StartStream() + Write()s + FinishStream().
// Every method may be called from any thread (each posts to the
// connection's strand); calls after the client went away are ignored, and
// Write() then reports false.
class HttpExchange {
 public:
  // `sequence` numbers the connection's requests; calls of an exchange
  // whose request is over are ignored.
  HttpExchange(std::shared_ptr<Connection> connection, uint64_t sequence,
               HttpRequest request);
  ~HttpExchange();
  HttpExchange(const HttpExchange&) = delete;
  HttpExchange& operator=(const HttpExchange&) = delete;

  const HttpRequest& request() const { return request_; }
  // The client's IP address as text ("127.0.0.1", "::1"); empty if the
  // socket could not tell.
  const std::string& client_address() const;

  // The whole answer. Content-Length and Connection are added.
  void Respond(int status, HttpHeaders headers, std::string body);
  // Sends the status line and headers of a streamed answer (chunked).
  void StartStream(int status, HttpHeaders headers);
  // Sends `data` as one chunk, flushed at once; `done(true)` once written,
  // `done(false)` if the client is gone. Empty data writes nothing.
  void Write(std::string data, std::function<void(bool ok)> done);
  // Ends the streamed answer.
  void FinishStream();
  // Names the request's route for the metrics (the route's template, such
  // as "POST /v1/chat", never the raw path); call before answering. A
  // request left unnamed is counted as "unmatched".
  void SetRoute(std::string route);
  // `callback` runs once (on an I/O thread) if the client closes the
  // connection or a write fails before the answer is complete; at once if
  // that already happened.
  void OnClientGone(std::function<void()> callback);
  // `callback` runs once (on an I/O thread) at `when` if the answer is not
  // written by then and the client is still there; a later call replaces
  // the time. Ignored once the answer is complete. For work that has no
  // deadline of its own, such as a call answered in this process
  // (gateway/app/local_method.h).
  void OnDeadline(absl::Time when, std::function<void()> callback);

 private:
  std::shared_ptr<Connection> connection_;
  const uint64_t sequence_;
  HttpRequest request_;
};

using HttpHandler = std::function<void(std::shared_ptr<HttpExchange>)>;

struct HttpServerOptions {
  // Largest request body; a larger one is answered 413 and the connection
  // closed.
  size_t max_body_bytes = 1 << 20;
  // Most open connections in total, and from one client IP address. A
  // connection over either cap is accepted and closed at once, before a
  // byte is read or written: refusing costs no TLS handshake and no parsing,
  // and the client sees the connection closed (curl: "Empty reply from
  // server") and retries later.
  int max_connections = 10000;
  int max_connections_per_client = 1000;
  // How the log line about refused connections names the flags of those
  // caps: "--" for chat-gateway's --max_connections*, "--http_" for
  // chat-server's embedded port.
  std::string connection_flag_prefix = "--";
  // Time to receive a request's head (request line and headers): for a
  // connection's first request from the moment it is accepted (the TLS
  // handshake included), for later ones from their first byte. On expiry
  // the server answers 408 and closes; a slow sender (slowloris) holds a
  // connection this long at most.
  absl::Duration header_timeout = absl::Seconds(10);
  // How long a keep-alive connection may wait for the first byte of its
  // next request before it is closed (without an answer).
  absl::Duration idle_timeout = absl::Seconds(60);
  // Time to receive a request's body once its head is in.
  absl::Duration read_timeout = absl::Seconds(30);
  // Time allowed for one write to a slow client.
  absl::Duration write_timeout = absl::Seconds(60);
  int io_threads = 2;
  // PEM files of the certificate chain and its private key: both set, the
  // server speaks HTTPS (TLS 1.2+, ALPN http/1.1) instead of HTTP on its
  // listener; both empty, plain HTTP.
  std::string tls_cert_file;
  std::string tls_key_file;
  // Logs one line per request (method, target, status, duration, request id).
  bool access_log = false;
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, HttpHandler handler);
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  ~HttpServer();  // Stop()s.

  // Binds `host:port` (port 0: the OS picks), starts the I/O threads and
  // returns the bound port. UNAVAILABLE if the address cannot be bound;
  // INVALID_ARGUMENT (naming --tls_cert or --tls_key) if the TLS files
  // cannot be loaded.
  absl::StatusOr<int> Start(const std::string& host, int port);
  bool serves_tls() const { return !options_.tls_cert_file.empty(); }
  // Re-reads the TLS files (on SIGHUP): connections accepted from now on
  // use the new certificate, open ones keep the one they started with.
  // Returns the new certificate's description; on failure the current
  // certificate stays. FAILED_PRECONDITION if not serving HTTPS.
  absl::StatusOr<std::string> ReloadTls();
  // The current certificate (subject, serial, expiry), "" without HTTPS.
  std::string DescribeTls() const;
  // Stops accepting new connections. Requests being handled go on; a new
  // request on an open connection is answered 503 and the connection closed,
  // so no call starts that could outlive the server.
  void StopAccepting();
  // Waits until no request is being handled (every answer written, or its
  // client gone) or `timeout` passes; true if none is.
  bool WaitIdle(absl::Duration timeout);
  // Waits (up to 5 s) for the handler to release every exchange, then stops
  // the I/O threads, dropping every connection, and joins them.
  void Stop();

 private:
  void Accept();
  std::shared_ptr<boost::asio::ssl::context> CurrentTlsContext() const;
  // Logs a refused connection, at most once per 10 s (on the acceptor's
  // strand): the refusals themselves may be an attack on the log.
  void LogRefused(const std::string& client);

  const HttpServerOptions options_;
  const HttpHandler handler_;
  // Shared with every connection, which may outlive the server by a little
  // (a handler still holding its exchange).
  const std::shared_ptr<ConnectionLimiter> limiter_;
  // Refusals since the last log line, and when that was (acceptor strand).
  int64_t refused_unlogged_ = 0;
  absl::Time refused_logged_ = absl::InfinitePast();
  // With HTTPS, the context new connections take; swapped by ReloadTls().
  mutable absl::Mutex tls_mu_;
  std::shared_ptr<boost::asio::ssl::context> tls_context_
      ABSL_GUARDED_BY(tls_mu_);
  // Before io_context_, so they outlive it: handlers still queued when the
  // threads stopped (a late answer's) are destroyed with it and count down.
  // Requests handed to the handler whose answer is not yet written.
  std::atomic<int> busy_{0};
  // HttpExchange objects alive: each holds its connection.
  std::atomic<int> exchanges_{0};
  // Set by StopAccepting(): new requests on open connections answer 503.
  std::atomic<bool> draining_{false};
  bool stopped_ = false;
  boost::asio::io_context io_context_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
};

}  // namespace chat::gateway

#endif  // CHAT_GATEWAY_HTTP_HTTP_SERVER_H_
