#include "gateway/http/http_server.h"

#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <deque>
#include <optional>
#include <variant>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "boost/asio/bind_executor.hpp"
#include "boost/asio/dispatch.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/strand.hpp"
#include "boost/asio/write.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/core/tcp_stream.hpp"
#include "boost/beast/http/error.hpp"
#include "boost/beast/http/parser.hpp"
#include "boost/beast/http/read.hpp"
#include "boost/beast/http/status.hpp"
#include "boost/beast/ssl/ssl_stream.hpp"
#include "common/logging.h"
#include "gateway/http/connection_limiter.h"
#include "gateway/http/http_metrics.h"
#include "gateway/http/tls_context.h"

namespace chat::gateway {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

namespace {

using TlsStream = beast::ssl_stream<beast::tcp_stream>;
// A connection's byte stream: plain TCP, or TLS over TCP. One Connection
// class serves both; it reaches the stream through std::visit where Beast's
// algorithms take the stream, and through the TCP layer for timeouts and
// the socket.
using AnyStream = std::variant<beast::tcp_stream, TlsStream>;

AnyStream MakeStream(tcp::socket socket, ssl::context* tls) {
  return tls != nullptr
             ? AnyStream(std::in_place_type<TlsStream>, std::move(socket), *tls)
             : AnyStream(std::in_place_type<beast::tcp_stream>,
                         std::move(socket));
}

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(d);
}

std::string ReasonPhrase(int status) {
  if (status == 499) return "Client Closed Request";
  beast::string_view reason =
      http::obsolete_reason(http::int_to_status(status));
  if (reason.empty() || reason == "<unknown-status>") return "Status";
  return std::string(reason);
}

// Why a request's framing or Host header cannot be trusted, or "" if they
// can. Such a request is answered 400 and the connection closed: when two
// parsers on the path could disagree about where the body ends, the bytes
// after it must never be read as a request (RFC 9112 section 6.3, request
// smuggling). Beast already rejects Transfer-Encoding: chunked next to a
// Content-Length; it reads any other final coding as "no body".
std::string UntrustedHeader(const HttpRequest::header_type& header) {
  auto codings = header.equal_range(http::field::transfer_encoding);
  if (codings.first != codings.second) {
    if (header.version() < 11) {
      // RFC 9112 section 6.1: HTTP/1.0 has no transfer codings.
      return "Transfer-Encoding is not allowed in an HTTP/1.0 request";
    }
    if (header.count(http::field::content_length) > 0) {
      // Rejected rather than letting Transfer-Encoding win (section 6.3).
      return "a request cannot have both Transfer-Encoding and "
             "Content-Length";
    }
    // The codings of every field line, in order; only the last matters.
    absl::string_view last;
    for (auto it = codings.first; it != codings.second; ++it) {
      const beast::string_view value = it->value();
      for (absl::string_view coding :
           absl::StrSplit(absl::string_view(value.data(), value.size()), ',')) {
        coding = absl::StripAsciiWhitespace(coding);
        if (!coding.empty()) last = coding;
      }
    }
    if (!absl::EqualsIgnoreCase(last, "chunked")) {
      return "the final Transfer-Encoding of a request must be chunked";
    }
  }
  // RFC 9112 section 3.2: an HTTP/1.1 request has exactly one Host.
  if (header.version() >= 11 && header.count(http::field::host) != 1) {
    return "an HTTP/1.1 request must have exactly one Host header";
  }
  return "";
}

// The origin-form ("/path?query") of an absolute-form target
// ("http://host:port/path?query", RFC 9112 section 3.2.2), so handlers see
// one form; any other target is returned as it is. The Host header is left
// as sent.
std::string OriginForm(absl::string_view target) {
  const size_t scheme_end = target.find("://");
  if (scheme_end == absl::string_view::npos || target.empty() ||
      target.front() == '/') {
    return std::string(target);
  }
  const absl::string_view scheme = target.substr(0, scheme_end);
  if (!absl::EqualsIgnoreCase(scheme, "http") &&
      !absl::EqualsIgnoreCase(scheme, "https")) {
    return std::string(target);
  }
  const absl::string_view rest = target.substr(scheme_end + 3);
  const size_t path_start = rest.find_first_of("/?");
  if (path_start == absl::string_view::npos) return "/";
  const absl::string_view path = rest.substr(path_start);
  return path.front() == '/' ? std::string(path) : absl::StrCat("/", path);
}

std::string ClientAddressOf(const tcp::socket& socket) {
  boost::system::error_code ec;
  const tcp::endpoint peer = socket.remote_endpoint(ec);
  if (ec) return std::string();
  net::ip::address address = peer.address();
  // On a dual-stack listener an IPv4 client is ::ffff:a.b.c.d; one client,
  // one key, however it arrived.
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    address = net::ip::make_address_v4(net::ip::v4_mapped, address.to_v6());
  }
  return address.to_string();
}

}  // namespace

// One client connection. All members are touched only on the connection's
// strand (the socket's executor).
//
// States: waiting for a request (idle: --idle_timeout) -> reading its head
// (--header_timeout, 408 on expiry) -> reading its body (--read_timeout) ->
// handling (the exchange holds the connection; a watch on the socket
// notices the client leaving) -> writing the answer -> waiting for the next
// request, or closing.
//
// The connection holds one slot of the server's ConnectionLimiter from its
// start until its socket is closed. With HTTPS a TLS handshake comes first,
// under the first request's header timer.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // `tls`: the context of an HTTPS connection (kept alive by the
  // connection, so a reload swapping the server's context leaves it be), or
  // null for HTTP.
  Connection(tcp::socket socket, std::string client_address,
             std::shared_ptr<ssl::context> tls,
             const HttpServerOptions& options, const HttpHandler& handler,
             std::atomic<int>* busy, std::atomic<int>* exchanges,
             const std::atomic<bool>* draining,
             std::shared_ptr<ConnectionLimiter> limiter)
      : tls_context_(std::move(tls)),
        client_address_(std::move(client_address)),
        stream_(MakeStream(std::move(socket), tls_context_.get())),
        header_timer_(Tcp().get_executor()),
        deadline_timer_(Tcp().get_executor()),
        options_(options),
        handler_(handler),
        server_busy_(busy),
        server_exchanges_(exchanges),
        draining_(draining),
        limiter_(std::move(limiter)),
        metrics_(GatewayHttpMetrics::Get()) {
    metrics_.open_connections.Increment();
  }
  ~Connection() {
    SetBusy(false);
    ReleaseSlot();
    if (stream_counted_) metrics_.open_streams.Decrement();
  }

  // Keeps the server's count of exchanges alive (HttpServer::Stop waits for
  // it to reach zero).
  void CountExchange(int delta) { server_exchanges_->fetch_add(delta); }

  void Start() {
    net::dispatch(Tcp().get_executor(), [self = shared_from_this()] {
      // The first request's head is due within --header_timeout of the
      // connection's start: a client that connects and sends nothing, or
      // sends slowly, is cut off as one that sends half a head is.
      self->StartHeaderTimer();
      if (TlsStream* tls = std::get_if<TlsStream>(&self->stream_)) {
        tls->async_handshake(ssl::stream_base::server,
                             [self](beast::error_code ec) {
                               // Not TLS (plain HTTP to the HTTPS port), a
                               // failed handshake or the header timer:
                               // nothing can be answered.
                               if (ec) {
                                 self->Close();
                                 return;
                               }
                               self->ReadHeader();
                             });
        return;
      }
      self->ReadHeader();
    });
  }

  // The peer's IP address, as text ("127.0.0.1", "::1").
  const std::string& client_address() const { return client_address_; }

  template <typename F>
  void Post(F&& f) {
    net::post(Tcp().get_executor(), std::forward<F>(f));
  }

  // The HttpExchange methods, run on the strand.
  // Each takes the sequence number of the exchange calling it: calls from an
  // exchange whose request is over are ignored.
  void DoRespond(uint64_t seq, int status, HttpHeaders headers,
                 std::string body) {
    if (seq != sequence_ || gone_ || response_started_) return;
    response_started_ = true;
    std::string out = Head(status, headers, /*streamed=*/false, body.size());
    // A HEAD answer has GET's headers (Content-Length included) and no body.
    if (!head_request_) out += body;
    Enqueue(std::move(out), nullptr);
    response_complete_ = true;
    MaybeWriteNext();
  }

  void DoStartStream(uint64_t seq, int status, HttpHeaders headers) {
    if (seq != sequence_ || gone_ || response_started_) return;
    response_started_ = true;
    streamed_ = true;
    if (!stream_counted_) {
      stream_counted_ = true;
      metrics_.open_streams.Increment();
    }
    Enqueue(Head(status, headers, /*streamed=*/true, 0), nullptr);
    MaybeWriteNext();
  }

  void DoWrite(uint64_t seq, std::string data, std::function<void(bool)> done) {
    if (seq != sequence_ || gone_ || !streamed_ || response_complete_) {
      if (done) done(false);
      return;
    }
    if (data.empty()) {
      if (done) done(true);
      return;
    }
    if (chunked_) {
      std::string framed = absl::StrCat(absl::Hex(data.size()), "\r\n");
      framed += data;
      framed += "\r\n";
      data = std::move(framed);
    }
    Enqueue(std::move(data), std::move(done));
    MaybeWriteNext();
  }

  void DoFinishStream(uint64_t seq) {
    if (seq != sequence_ || gone_ || !streamed_ || response_complete_) return;
    response_complete_ = true;
    if (chunked_) {
      Enqueue("0\r\n\r\n", nullptr);
    } else {
      keep_alive_ = false;  // An HTTP/1.0 stream ends when the socket closes.
    }
    MaybeWriteNext();
  }

  void DoSetRoute(uint64_t seq, std::string route) {
    if (seq != sequence_) return;
    route_ = std::move(route);
  }

  void DoOnDeadline(uint64_t seq, absl::Time when,
                    std::function<void()> callback) {
    if (seq != sequence_ || gone_ || response_complete_) return;
    StopDeadlineTimer();
    if (when == absl::InfiniteFuture()) return;
    const uint64_t generation = ++deadline_generation_;
    deadline_timer_.expires_after(
        ToChrono(std::max(when - absl::Now(), absl::ZeroDuration())));
    deadline_timer_.async_wait(
        [self = shared_from_this(), generation,
         callback = std::move(callback)](beast::error_code ec) {
          // A stale expiry (the answer ended after the timer had fired,
          // with its handler queued) sees a newer generation.
          if (ec || generation != self->deadline_generation_) return;
          callback();
        });
  }

  void DoOnClientGone(uint64_t seq, std::function<void()> callback) {
    if (seq != sequence_) return;
    if (gone_) {
      callback();
      return;
    }
    on_gone_ = std::move(callback);
  }

 private:
  struct PendingWrite {
    std::string data;
    std::function<void(bool)> done;
  };

  std::string Head(int status, const HttpHeaders& headers, bool streamed,
                   size_t content_length) {
    std::string out =
        absl::StrCat("HTTP/1.1 ", status, " ", ReasonPhrase(status), "\r\n");
    status_ = status;
    for (const auto& [name, value] : headers) {
      absl::StrAppend(&out, name, ": ", value, "\r\n");
      if (name == "x-request-id") request_id_ = value;
      if (name == "traceparent") traceparent_ = value;
    }
    if (status == 204 || status == 304) {
      // No body and, per RFC 9110 section 8.6, no Content-Length.
    } else if (!streamed) {
      absl::StrAppend(&out, "Content-Length: ", content_length, "\r\n");
    } else if (chunked_) {
      absl::StrAppend(&out, "Transfer-Encoding: chunked\r\n");
    } else {
      keep_alive_ = false;
    }
    absl::StrAppend(&out, "Connection: ", keep_alive_ ? "keep-alive" : "close",
                    "\r\n\r\n");
    return out;
  }

  // Reads the next request's head. On a keep-alive connection with nothing
  // buffered, first waits (up to --idle_timeout) for its first byte, which
  // starts the header timer.
  void ReadHeader() {
    parser_.emplace();
    parser_->header_limit(16 * 1024);
    parser_->body_limit(options_.max_body_bytes);
    if (!header_timer_running_) {
      if (buffer_.size() == 0) {
        WaitForRequest();
        return;
      }
      StartHeaderTimer();  // A pipelined request is already here.
    }
    // The header timer bounds this read; tcp_stream's own timeout would
    // close the socket before a 408 could be written.
    Tcp().expires_never();
    std::visit(
        [this](auto& stream) {
          http::async_read_header(
              stream, buffer_, *parser_,
              [self = shared_from_this()](beast::error_code ec, size_t) {
                self->OnHeader(ec);
              });
        },
        stream_);
  }

  void WaitForRequest() {
    Tcp().expires_after(ToChrono(options_.idle_timeout));
    std::visit(
        [this](auto& stream) {
          stream.async_read_some(
              buffer_.prepare(4096),
              [self = shared_from_this()](beast::error_code ec, size_t n) {
                self->buffer_.commit(n);
                if (ec) {
                  // Idle too long (tcp_stream closed the socket), or the
                  // client left: closed without an answer, as no request
                  // was started.
                  self->Close();
                  return;
                }
                self->StartHeaderTimer();
                self->ReadHeader();
              });
        },
        stream_);
  }

  void StartHeaderTimer() {
    header_timer_running_ = true;
    const uint64_t generation = ++header_generation_;
    header_timer_.expires_after(ToChrono(options_.header_timeout));
    header_timer_.async_wait(
        [self = shared_from_this(), generation](beast::error_code ec) {
          // A stale expiry (the head arrived after the timer had already
          // fired, with its handler queued) sees a newer generation.
          if (ec || generation != self->header_generation_) return;
          self->header_timed_out_ = true;
          beast::error_code ignored;
          self->Tcp().socket().cancel(ignored);
        });
  }

  // The exchange's answer is over (or its client gone): its deadline no
  // longer applies.
  void StopDeadlineTimer() {
    ++deadline_generation_;
    deadline_timer_.cancel();
  }

  void StopHeaderTimer() {
    header_timer_running_ = false;
    ++header_generation_;
    header_timer_.cancel();
  }

  void OnHeader(beast::error_code ec) {
    StopHeaderTimer();
    if (ec) {
      if (header_timed_out_ && ec == net::error::operation_aborted) {
        if (!parser_->got_some() && buffer_.size() == 0) {
          // Not a byte of a request: a browser's preconnected socket, say.
          // Closed without an answer, as nginx does.
          Close();
          return;
        }
        RejectRequest(
            408, absl::StrCat("the request head was not received "
                              "within ",
                              absl::FormatDuration(options_.header_timeout)));
        return;
      }
      OnReadError(ec);
      return;
    }
    const auto& header = parser_->get();
    if (std::string why = UntrustedHeader(header); !why.empty()) {
      RejectRequest(400, why);
      return;
    }
    boost::optional<uint64_t> length = parser_->content_length();
    if (length && *length > options_.max_body_bytes) {
      RejectRequest(413, absl::StrCat("the request body is ", *length,
                                      " bytes; the limit is ",
                                      options_.max_body_bytes, " bytes"));
      return;
    }
    if (absl::EqualsIgnoreCase(std::string(header[http::field::expect]),
                               "100-continue") &&
        header.version() >= 11) {
      // The client waits for this before sending the body (curl does for
      // bodies over 1 KiB); its write is queued ahead of everything else.
      std::visit(
          [this](auto& stream) {
            net::async_write(
                stream, net::buffer(kContinue, sizeof(kContinue) - 1),
                [self = shared_from_this()](beast::error_code ec, size_t) {
                  if (ec) {
                    self->Close();
                    return;
                  }
                  self->ReadBody();
                });
          },
          stream_);
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    Tcp().expires_after(ToChrono(options_.read_timeout));
    std::visit(
        [this](auto& stream) {
          http::async_read(
              stream, buffer_, *parser_,
              [self = shared_from_this()](beast::error_code ec, size_t) {
                self->OnBody(ec);
              });
        },
        stream_);
  }

  void OnBody(beast::error_code ec) {
    if (ec) {
      OnReadError(ec);
      return;
    }
    Tcp().expires_never();
    if (draining_->load()) {
      // Shutting down: requests already running finish, but a keep-alive
      // connection gets no new call started, which could outlive the
      // server; the client retries elsewhere.
      RejectRequest(503, "the gateway is shutting down; retry");
      return;
    }
    HttpRequest request = parser_->release();
    // Origin-form ("/...") is nearly every request: left as it is, without
    // a copy or a rewrite of the start line.
    if (const beast::string_view target = request.target();
        target.empty() || target.front() != '/') {
      request.target(
          OriginForm(absl::string_view(target.data(), target.size())));
    }
    keep_alive_ = request.keep_alive();
    head_request_ = request.method() == http::verb::head;
    started_ = absl::Now();
    status_ = 0;
    route_ = kUnmatchedRoute;
    unrecorded_ = true;
    if (options_.access_log) {
      request_line_ = absl::StrCat(std::string(request.method_string()), " ",
                                   std::string(request.target()));
      status_ = 0;
      request_id_.clear();
      traceparent_.clear();
    }
    chunked_ = request.version() >= 11;
    response_started_ = response_complete_ = streamed_ = false;
    on_gone_ = nullptr;
    StopDeadlineTimer();
    SetBusy(true);
    Watch();
    ++sequence_;
    handler_(std::make_shared<HttpExchange>(shared_from_this(), sequence_,
                                            std::move(request)));
  }

  void OnReadError(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      RejectRequest(413, absl::StrCat("the request body is over the limit of ",
                                      options_.max_body_bytes, " bytes"));
    } else if (ec == http::error::header_limit) {
      RejectRequest(431, "the request headers are too large");
    } else if (ec == http::error::end_of_stream ||
               ec == beast::error::timeout ||
               ec == net::error::operation_aborted ||
               ec == net::error::connection_reset || ec == net::error::eof) {
      // The client left, or the read timed out: an idle keep-alive
      // connection, or a request that never completed. tcp_stream has
      // already closed the socket on a timeout, so no 408 can be sent.
      Close();
    } else {
      RejectRequest(400,
                    absl::StrCat("malformed HTTP request: ", ec.message()));
    }
  }

  // Answers an unreadable request and closes: the rest of the stream cannot
  // be trusted to start at a request boundary.
  void RejectRequest(int status, const std::string& message) {
    if (!unrecorded_) {  // No request of ours is open: this answer is one.
      started_ = absl::Now();
      route_ = kUnmatchedRoute;
      unrecorded_ = true;
    }
    keep_alive_ = false;
    chunked_ = true;
    response_started_ = true;
    response_complete_ = true;
    // The gRPC code that goes with each status (google.rpc.Code docs).
    int code = status == 413 ? 8 : status == 503 ? 14 : 3;
    std::string body = absl::StrCat("{\"code\":", code, ",\"message\":\"",
                                    message, "\",\"details\":[]}");
    Enqueue(Head(status, {{"Content-Type", "application/json"}}, false,
                 body.size()) +
                body,
            nullptr);
    MaybeWriteNext();
  }

  void Enqueue(std::string data, std::function<void(bool)> done) {
    queue_.push_back(PendingWrite{std::move(data), std::move(done)});
  }

  void MaybeWriteNext() {
    if (writing_ || gone_) return;
    if (queue_.empty()) {
      if (response_complete_) AfterResponse();
      return;
    }
    // Everything queued goes out in one gather write: a stream's last delta,
    // its done event and the chunked terminator usually queue together, and
    // each write is a system call and a trip through the loopback's TCP
    // stack. The buffers being written live in `in_flight_`, out of the
    // queue, so that ClientGone() can drop the queue while the write is
    // pending.
    writing_ = true;
    in_flight_.clear();
    in_flight_buffers_.clear();
    while (!queue_.empty()) {
      in_flight_.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    for (const PendingWrite& w : in_flight_) {
      in_flight_buffers_.push_back(net::buffer(w.data));
    }
    Tcp().expires_after(ToChrono(options_.write_timeout));
    std::visit(
        [this](auto& stream) {
          net::async_write(
              stream, in_flight_buffers_,
              [self = shared_from_this()](beast::error_code ec, size_t) {
                self->OnWrite(ec);
              });
        },
        stream_);
  }

  void OnWrite(beast::error_code ec) {
    writing_ = false;
    std::vector<PendingWrite> done;
    done.swap(in_flight_);
    in_flight_buffers_.clear();
    if (ec) {
      ClientGone();
      for (PendingWrite& w : done) {
        if (w.done) w.done(false);
      }
      return;
    }
    for (PendingWrite& w : done) {
      if (w.done) w.done(true);
    }
    MaybeWriteNext();
  }

  // The answer is written: stop watching and read the next request, or
  // close.
  void AfterResponse() {
    LogAccess("");
    RecordRequest(status_);
    SetBusy(false);
    ++watch_generation_;
    beast::error_code ignored;
    Tcp().socket().cancel(ignored);
    on_gone_ = nullptr;
    StopDeadlineTimer();
    if (!keep_alive_) {
      // The slot is free before the client can see the end of the stream,
      // so a client that waits for it can connect again at once.
      ReleaseSlot();
      if (TlsStream* tls = std::get_if<TlsStream>(&stream_)) {
        // close_notify, so the client can tell the end from a truncation;
        // the peer's own close_notify is awaited briefly, then the socket
        // is closed either way.
        Tcp().expires_after(std::chrono::seconds(2));
        tls->async_shutdown(
            [self = shared_from_this()](beast::error_code) { self->Close(); });
        return;
      }
      Tcp().socket().shutdown(tcp::socket::shutdown_send, ignored);
      Close();
      return;
    }
    ReadHeader();
  }

  // While a request is being handled, waits for the socket to turn
  // readable: end of stream or an error means the client left (its stream
  // must be cancelled); data means a pipelined request, read later.
  void Watch() {
    const uint64_t generation = ++watch_generation_;
    Tcp().socket().async_wait(
        tcp::socket::wait_read,
        [self = shared_from_this(), generation](beast::error_code ec) {
          self->OnWatch(ec, generation);
        });
  }

  void OnWatch(beast::error_code ec, uint64_t generation) {
    if (generation != watch_generation_ ||
        ec == net::error::operation_aborted || gone_) {
      return;
    }
    if (ec) {
      ClientGone();
      return;
    }
    char byte;
    ssize_t n = ::recv(Tcp().socket().native_handle(), &byte, 1,
                       MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 ||
        (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      ClientGone();
    } else if (n < 0) {
      Watch();
    }
    // n > 0: a pipelined request waits in the socket; stop watching.
  }

  void ClientGone() {
    if (gone_) return;
    gone_ = true;
    if (busy_) LogAccess(" (client gone)");
    // A client that closes as soon as it has read the answer can be seen
    // leaving before the write's completion runs: once the whole answer was
    // handed to the socket, it counts as answered. Otherwise the client did
    // not get all of it.
    RecordRequest(response_complete_ && queue_.empty() ? status_ : 499);
    SetBusy(false);
    std::function<void()> callback = std::move(on_gone_);
    on_gone_ = nullptr;
    StopDeadlineTimer();
    Close();  // A pending write now fails, and OnWrite reports it.
    std::deque<PendingWrite> dropped;
    dropped.swap(queue_);
    for (PendingWrite& w : dropped) {
      if (w.done) w.done(false);
    }
    if (callback) callback();
  }

  // One line per request handled (--access_log): what, the status, how
  // long until the answer was written, and the request id to find it in
  // chat-server's logs.
  void LogAccess(absl::string_view note) {
    if (!options_.access_log || request_line_.empty()) return;
    LogFields fields;
    fields.Add("request", request_line_)
        .Add("status", status_)
        .AddMillis("latency_ms",
                   absl::Trunc(absl::Now() - started_, absl::Microseconds(100)))
        .Add("request_id", request_id_);
    // 00-<trace id>-<span id>-<flags>, as the handler set it.
    if (traceparent_.size() == 55) {
      fields.Add("trace_id", absl::string_view(traceparent_).substr(3, 32))
          .Add("span_id", absl::string_view(traceparent_).substr(36, 16));
    }
    fields.Add("note", absl::StripLeadingAsciiWhitespace(note));
    Log(LogSeverity::kInfo, "access", fields);
    request_line_.clear();
  }

  // Counts the request being answered, once, and ends its stream's count.
  void RecordRequest(int status) {
    if (stream_counted_) {
      stream_counted_ = false;
      metrics_.open_streams.Decrement();
    }
    if (!unrecorded_) return;
    unrecorded_ = false;
    metrics_.requests.WithLabels({route_, absl::StrCat(status)}).Increment();
    metrics_.duration.WithLabels({route_}).Observe(
        absl::ToDoubleSeconds(absl::Now() - started_));
  }

  // Keeps the server's count of requests being handled.
  void SetBusy(bool busy) {
    if (busy == busy_) return;
    busy_ = busy;
    busy ? server_busy_->fetch_add(1) : server_busy_->fetch_sub(1);
  }

  void Close() {
    StopHeaderTimer();
    StopDeadlineTimer();
    beast::error_code ignored;
    Tcp().socket().close(ignored);
    ReleaseSlot();
  }

  // The TCP layer, for timeouts and the socket.
  beast::tcp_stream& Tcp() {
    if (TlsStream* tls = std::get_if<TlsStream>(&stream_)) {
      return tls->next_layer();
    }
    return std::get<beast::tcp_stream>(stream_);
  }

  void ReleaseSlot() {
    if (slot_released_) return;
    slot_released_ = true;
    metrics_.open_connections.Decrement();
    limiter_->Release(client_address_);
  }

  static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";

  // Declared before stream_, which uses it.
  const std::shared_ptr<ssl::context> tls_context_;
  const std::string client_address_;
  AnyStream stream_;
  // Bounds the wait for a request's head (--header_timeout); runs on the
  // connection's strand.
  net::steady_timer header_timer_;
  bool header_timer_running_ = false;
  bool header_timed_out_ = false;  // The timer cancelled the head's read.
  uint64_t header_generation_ = 0;
  // OnDeadline's.
  net::steady_timer deadline_timer_;
  uint64_t deadline_generation_ = 0;  // Stale expiries see a mismatch.
  const HttpServerOptions& options_;
  const HttpHandler& handler_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::deque<PendingWrite> queue_;       // Not yet written.
  std::vector<PendingWrite> in_flight_;  // Being written while `writing_`.
  std::vector<net::const_buffer> in_flight_buffers_;  // Into `in_flight_`.
  bool writing_ = false;
  bool keep_alive_ = true;
  bool chunked_ = true;             // HTTP/1.1 client: streams are chunked.
  bool response_started_ = false;   // Head queued.
  bool response_complete_ = false;  // Everything of the answer queued.
  bool streamed_ = false;
  bool head_request_ = false;
  // For the metrics and the access log (request_line_ and request_id_ only
  // with --access_log).
  absl::Time started_;
  std::string request_line_;
  std::string request_id_;
  std::string traceparent_;
  int status_ = 0;
  // The handler's name for the request's route (HttpExchange::SetRoute).
  std::string route_ = kUnmatchedRoute;
  // A request (or a rejection) is under way and not yet counted.
  bool unrecorded_ = false;
  // The answer is a stream counted in open_streams.
  bool stream_counted_ = false;
  bool gone_ = false;              // The client left; the socket is closed.
  uint64_t watch_generation_ = 0;  // Stale watch callbacks see a mismatch.
  std::atomic<int>* const server_busy_;
  std::atomic<int>* const server_exchanges_;
  const std::atomic<bool>* const draining_;
  uint64_t sequence_ = 0;  // Of the request being handled.
  bool busy_ = false;      // Counted in *server_busy_.
  std::function<void()> on_gone_;
  const std::shared_ptr<ConnectionLimiter> limiter_;
  bool slot_released_ = false;
  GatewayHttpMetrics& metrics_;
};

HttpExchange::HttpExchange(std::shared_ptr<Connection> connection,
                           uint64_t sequence, HttpRequest request)
    : connection_(std::move(connection)),
      sequence_(sequence),
      request_(std::move(request)) {
  connection_->CountExchange(1);
}

HttpExchange::~HttpExchange() { connection_->CountExchange(-1); }

const std::string& HttpExchange::client_address() const {
  return connection_->client_address();
}

void HttpExchange::Respond(int status, HttpHeaders headers, std::string body) {
  connection_->Post([c = connection_, seq = sequence_, status,
                     headers = std::move(headers),
                     body = std::move(body)]() mutable {
    c->DoRespond(seq, status, std::move(headers), std::move(body));
  });
}

void HttpExchange::StartStream(int status, HttpHeaders headers) {
  connection_->Post([c = connection_, seq = sequence_, status,
                     headers = std::move(headers)]() mutable {
    c->DoStartStream(seq, status, std::move(headers));
  });
}

void HttpExchange::Write(std::string data, std::function<void(bool)> done) {
  connection_->Post([c = connection_, seq = sequence_, data = std::move(data),
                     done = std::move(done)]() mutable {
    c->DoWrite(seq, std::move(data), std::move(done));
  });
}

void HttpExchange::FinishStream() {
  connection_->Post(
      [c = connection_, seq = sequence_] { c->DoFinishStream(seq); });
}

void HttpExchange::SetRoute(std::string route) {
  connection_->Post(
      [c = connection_, seq = sequence_, route = std::move(route)]() mutable {
        c->DoSetRoute(seq, std::move(route));
      });
}

void HttpExchange::OnDeadline(absl::Time when, std::function<void()> callback) {
  connection_->Post([c = connection_, seq = sequence_, when,
                     callback = std::move(callback)]() mutable {
    c->DoOnDeadline(seq, when, std::move(callback));
  });
}

void HttpExchange::OnClientGone(std::function<void()> callback) {
  connection_->Post([c = connection_, seq = sequence_,
                     callback = std::move(callback)]() mutable {
    c->DoOnClientGone(seq, std::move(callback));
  });
}

HttpServer::HttpServer(HttpServerOptions options, HttpHandler handler)
    : options_(std::move(options)),
      handler_(std::move(handler)),
      limiter_(std::make_shared<ConnectionLimiter>(
          std::max(1, options_.max_connections),
          std::max(1, options_.max_connections_per_client))),
      acceptor_(net::make_strand(io_context_)) {}

HttpServer::~HttpServer() { Stop(); }

absl::StatusOr<int> HttpServer::Start(const std::string& host, int port) {
  if (serves_tls()) {
    absl::StatusOr<std::shared_ptr<ssl::context>> tls =
        LoadServerTlsContext(options_.tls_cert_file, options_.tls_key_file);
    if (!tls.ok()) return tls.status();
    absl::MutexLock lock(&tls_mu_);
    tls_context_ = *std::move(tls);
  }
  beast::error_code ec;
  tcp::resolver resolver(io_context_);
  auto results =
      resolver.resolve(host, std::to_string(port), tcp::resolver::passive, ec);
  if (ec || results.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot resolve ", host, ": ", ec.message()));
  }
  tcp::endpoint endpoint = results.begin()->endpoint();
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", host, ":", port, ": ", ec.message()));
  }
  const int bound = acceptor_.local_endpoint(ec).port();
  Accept();
  for (int i = 0; i < std::max(1, options_.io_threads); ++i) {
    threads_.emplace_back([this] { io_context_.run(); });
  }
  return bound;
}

void HttpServer::Accept() {
  acceptor_.async_accept(
      net::make_strand(io_context_),
      [this](beast::error_code ec, tcp::socket socket) {
        if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
        if (!ec) {
          beast::error_code ignored;
          std::string client = ClientAddressOf(socket);
          if (!limiter_->TryAcquire(client)) {
            socket.close(ignored);
            LogRefused(client);
          } else {
            socket.set_option(tcp::no_delay(true), ignored);
            std::make_shared<Connection>(
                std::move(socket), std::move(client), CurrentTlsContext(),
                options_, handler_, &busy_, &exchanges_, &draining_, limiter_)
                ->Start();
          }
        } else {
          // Out of descriptors, say: keep serving the open connections.
          LogWarning("accept failed: ", ec.message());
        }
        Accept();
      });
}

std::shared_ptr<ssl::context> HttpServer::CurrentTlsContext() const {
  absl::MutexLock lock(&tls_mu_);
  return tls_context_;
}

absl::StatusOr<std::string> HttpServer::ReloadTls() {
  if (!serves_tls()) {
    return absl::FailedPreconditionError("not serving HTTPS");
  }
  absl::StatusOr<std::shared_ptr<ssl::context>> tls =
      LoadServerTlsContext(options_.tls_cert_file, options_.tls_key_file);
  if (!tls.ok()) return tls.status();
  std::string description = DescribeCertificate(**tls);
  absl::MutexLock lock(&tls_mu_);
  tls_context_ = *std::move(tls);
  return description;
}

std::string HttpServer::DescribeTls() const {
  std::shared_ptr<ssl::context> tls = CurrentTlsContext();
  return tls == nullptr ? std::string() : DescribeCertificate(*tls);
}

void HttpServer::LogRefused(const std::string& client) {
  ++refused_unlogged_;
  const absl::Time now = absl::Now();
  if (now - refused_logged_ < absl::Seconds(10)) return;
  LogWarning(
      "refused ", refused_unlogged_,
      " connection(s) over the connection caps (latest from ", client, "; ",
      limiter_->open(), " open of ", options_.connection_flag_prefix,
      "max_connections=", options_.max_connections, ", ",
      limiter_->open_from(client), " from that address of ",
      options_.connection_flag_prefix,
      "max_connections_per_client=", options_.max_connections_per_client, ")");
  refused_unlogged_ = 0;
  refused_logged_ = now;
}

void HttpServer::StopAccepting() {
  draining_.store(true);
  net::post(acceptor_.get_executor(), [this] {
    beast::error_code ignored;
    acceptor_.close(ignored);
  });
}

bool HttpServer::WaitIdle(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (busy_.load() > 0) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

void HttpServer::Stop() {
  if (stopped_) return;
  stopped_ = true;
  StopAccepting();
  // A handler may drop its exchange a moment after the gateway counts its
  // call finished (a gRPC callback releasing it on gRPC's thread). The last
  // reference to a connection must go while io_context_ lives: the
  // connection's socket and timer call into its services as they close.
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (exchanges_.load() > 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  if (exchanges_.load() > 0) {
    LogWarning("stopping with ", exchanges_.load(),
               " exchange(s) still held by their handler");
  }
  io_context_.stop();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

}  // namespace chat::gateway
