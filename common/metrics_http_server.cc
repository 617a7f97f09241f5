#include "common/metrics_http_server.h"

#include <chrono>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "boost/asio.hpp"
#include "common/metrics.h"

namespace chat {
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr size_t kMaxRequestBytes = 8 * 1024;
constexpr std::chrono::seconds kRequestTimeout(10);

std::string Answer(absl::string_view status, absl::string_view content_type,
                   absl::string_view body, bool head) {
  return absl::StrCat("HTTP/1.1 ", status, "\r\nContent-Type: ", content_type,
                      "\r\nContent-Length: ", body.size(),
                      "\r\nConnection: close\r\n\r\n", head ? "" : body);
}

// One connection: read the head, answer, close. Owned by its pending
// operations through shared_from_this; the timer closes it if the client is
// slow.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, const MetricsHttpServer::Render* render)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        buffer_(kMaxRequestBytes),
        render_(render) {}

  void Start() {
    timer_.expires_after(kRequestTimeout);
    timer_.async_wait(
        [self = shared_from_this()](boost::system::error_code ec) {
          if (!ec) self->Close();
        });
    asio::async_read_until(
        socket_, buffer_, "\r\n\r\n",
        [self = shared_from_this()](boost::system::error_code ec, size_t n) {
          self->OnRead(ec, n);
        });
  }

 private:
  void OnRead(boost::system::error_code ec, size_t n) {
    if (ec) {
      // Too large a head gets an answer; a client that went away does not.
      if (ec == asio::error::not_found) {
        Write(Answer("431 Request Header Fields Too Large", "text/plain",
                     "request head too large\n", false));
      } else {
        Close();
      }
      return;
    }
    std::string head(asio::buffers_begin(buffer_.data()),
                     asio::buffers_begin(buffer_.data()) + n);
    absl::string_view line = head;
    line = line.substr(0, line.find("\r\n"));
    Write(MetricsHttpResponse(line, *render_));
  }

  void Write(std::string response) {
    response_ = std::move(response);
    asio::async_write(socket_, asio::buffer(response_),
                      [self = shared_from_this()](boost::system::error_code,
                                                  size_t) { self->Close(); });
  }

  void Close() {
    boost::system::error_code ignored;
    timer_.cancel();
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  asio::streambuf buffer_;
  std::string response_;
  const MetricsHttpServer::Render* const render_;
};

}  // namespace

std::string MetricsHttpResponse(absl::string_view request_line,
                                const MetricsHttpServer::Render& render) {
  std::vector<absl::string_view> parts =
      absl::StrSplit(request_line, ' ', absl::SkipEmpty());
  if (parts.size() != 3 || !absl::StartsWith(parts[2], "HTTP/1.")) {
    return Answer("400 Bad Request", "text/plain", "bad request\n", false);
  }
  absl::string_view path = parts[1].substr(0, parts[1].find('?'));
  const bool head = parts[0] == "HEAD";
  if (path != "/metrics") {
    return Answer("404 Not Found", "text/plain", "not found\n", head);
  }
  if (parts[0] != "GET" && !head) {
    return absl::StrCat(
        "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n"
        "Content-Type: text/plain\r\nContent-Length: 19\r\n"
        "Connection: close\r\n\r\nmethod not allowed\n");
  }
  return Answer("200 OK", kMetricsContentType, render(), head);
}

class MetricsHttpServer::Impl {
 public:
  explicit Impl(Render render)
      : render_(std::move(render)), acceptor_(io_), work_(io_.get_executor()) {}

  ~Impl() {
    asio::post(io_, [this] {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      io_.stop();
    });
    if (thread_.joinable()) thread_.join();
  }

  absl::Status Listen(absl::string_view host, int port) {
    boost::system::error_code ec;
    asio::ip::address address =
        host.empty() ? asio::ip::address(asio::ip::address_v6::any())
                     : asio::ip::make_address(std::string(host), ec);
    if (ec) {
      // A name ("localhost"): resolve it, once, at start-up.
      tcp::resolver resolver(io_);
      auto results = resolver.resolve(std::string(host), "", ec);
      if (ec || results.empty()) {
        return absl::UnavailableError(
            absl::StrCat("cannot resolve ", host, ": ", ec.message()));
      }
      address = results.begin()->endpoint().address();
    }
    tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ", host, ":",
                                                 port, ": ", ec.message()));
    }
    port_ = acceptor_.local_endpoint().port();
    Accept();
    thread_ = std::thread([this] { io_.run(); });
    return absl::OkStatus();
  }

  int port() const { return port_; }

 private:
  void Accept() {
    acceptor_.async_accept(
        [this](boost::system::error_code ec, tcp::socket socket) {
          if (ec == asio::error::operation_aborted) return;
          if (!ec) {
            std::make_shared<Connection>(std::move(socket), &render_)->Start();
          }
          Accept();
        });
  }

  const Render render_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  int port_ = 0;
};

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    absl::string_view host, int port, Render render) {
  auto impl = std::make_unique<Impl>(std::move(render));
  if (absl::Status s = impl->Listen(host, port); !s.ok()) return s;
  return std::unique_ptr<MetricsHttpServer>(
      new MetricsHttpServer(std::move(impl)));
}

MetricsHttpServer::MetricsHttpServer(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

MetricsHttpServer::~MetricsHttpServer() = default;

int MetricsHttpServer::port() const { return impl_->port(); }

}  // namespace chat
