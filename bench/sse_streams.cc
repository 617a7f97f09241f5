// sse_streams: opens N concurrent server-sent-event streams through
// chat-gateway (POST /v1/chat:stream, each on its own HTTP/1.1 connection),
// reads each to its `event: done`, and prints how many completed, the time
// from a stream's start to its first delta (p50 / p99), the wall time, and
// its own CPU time. One thread and epoll: the load generator must cost far
// less than what it measures, which Node's fetch does not at 10,000 streams
// (about 9 CPU seconds, more than the gateway and server together).
// Bounded: N streams, once, each with a deadline; only to --target.
//
//   sse_streams --target=127.0.0.1:8000 --streams=10000
//
// The output's first two lines have bench/gateway_streams.mjs's format; the
// last, RESULT, is for bench/run.sh.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

ABSL_FLAG(std::string, target, "127.0.0.1:8000", "chat-gateway HOST:PORT");
ABSL_FLAG(int, streams, 1000, "streams opened at once");
ABSL_FLAG(std::string, path, "/v1/chat:stream", "the streaming route");
ABSL_FLAG(std::string, message, "w0 w1 w2 w3 w4 w5 w6 w7",
          "the user message of every stream");
ABSL_FLAG(std::string, api_key, "", "sent as Authorization: Bearer");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(120),
          "a stream not done by then counts as failed");

namespace {

struct Stream {
  int fd = -1;
  std::string request;
  size_t sent = 0;
  std::string received;
  absl::Time start;
  absl::Duration first_delta = absl::InfiniteDuration();
  bool headers_done = false;
  bool done = false;
  std::string error;
};

void Fail(Stream& s, std::string error) {
  if (s.done) return;
  s.done = true;
  s.error = std::move(error);
}

// Looks at what arrived so far: the status line, then the first delta and
// the done event. Chunk framing is not parsed; the event names are what
// matter and they never span a chunk boundary in a way that hides them
// (the search runs over the whole body received so far).
void Inspect(Stream& s, absl::Time now) {
  if (!s.headers_done) {
    size_t end = s.received.find("\r\n\r\n");
    if (end == std::string::npos) return;
    s.headers_done = true;
    if (s.received.compare(0, 12, "HTTP/1.1 200") != 0) {
      Fail(s, s.received.substr(0, s.received.find("\r\n")));
      return;
    }
  }
  if (s.first_delta == absl::InfiniteDuration() &&
      s.received.find("event: delta") != std::string::npos) {
    s.first_delta = now - s.start;
  }
  if (s.received.find("event: done") != std::string::npos) {
    s.done = true;
  } else if (s.received.find("event: error") != std::string::npos) {
    Fail(s, "error event");
  }
}

double Percentile(std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(p / 100.0 * sorted.size());
  return sorted[std::min(sorted.size() - 1, i)];
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int n = absl::GetFlag(FLAGS_streams);
  std::vector<std::string> host_port =
      absl::StrSplit(absl::GetFlag(FLAGS_target), ':');
  int port = 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  if (host_port.size() != 2 || !absl::SimpleAtoi(host_port[1], &port) ||
      inet_pton(AF_INET, host_port[0].c_str(), &addr.sin_addr) != 1 || n < 1) {
    std::fprintf(stderr,
                 "sse_streams: --target must be IPv4:PORT, --streams > 0\n");
    return 2;
  }
  addr.sin_port = htons(static_cast<uint16_t>(port));
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);

  const std::string key = absl::GetFlag(FLAGS_api_key);
  const std::string auth =
      key.empty() ? "" : absl::StrCat("Authorization: Bearer ", key, "\r\n");
  const int epoll = epoll_create1(0);
  std::vector<Stream> streams(n);
  const absl::Time t0 = absl::Now();
  int open = 0;
  for (int i = 0; i < n; ++i) {
    Stream& s = streams[i];
    const std::string body =
        absl::StrCat(R"({"message":")", absl::GetFlag(FLAGS_message),
                     R"(","session_id":"sse-)", getpid(), "-", i, R"("})");
    s.request = absl::StrCat(
        "POST ", absl::GetFlag(FLAGS_path),
        " HTTP/1.1\r\nHost: ", absl::GetFlag(FLAGS_target), "\r\n", auth,
        "Content-Type: application/json\r\nContent-Length: ", body.size(),
        "\r\n\r\n", body);
    s.start = absl::Now();
    s.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s.fd < 0) {
      Fail(s, absl::StrCat("socket: ", std::strerror(errno)));
      continue;
    }
    int one = 1;
    setsockopt(s.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 &&
        errno != EINPROGRESS) {
      Fail(s, absl::StrCat("connect: ", std::strerror(errno)));
      close(s.fd);
      s.fd = -1;
      continue;
    }
    epoll_event ev{};
    ev.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP;
    ev.data.u32 = static_cast<uint32_t>(i);
    epoll_ctl(epoll, EPOLL_CTL_ADD, s.fd, &ev);
    ++open;
  }

  const absl::Time deadline = t0 + absl::GetFlag(FLAGS_timeout);
  std::vector<epoll_event> events(1024);
  char buffer[16384];
  while (open > 0 && absl::Now() < deadline) {
    const int ready =
        epoll_wait(epoll, events.data(), static_cast<int>(events.size()), 100);
    const absl::Time now = absl::Now();
    for (int e = 0; e < ready; ++e) {
      Stream& s = streams[events[e].data.u32];
      if (s.fd < 0) continue;
      if (s.sent < s.request.size() && (events[e].events & EPOLLOUT)) {
        ssize_t w = send(s.fd, s.request.data() + s.sent,
                         s.request.size() - s.sent, MSG_NOSIGNAL);
        if (w > 0) s.sent += static_cast<size_t>(w);
        if (w < 0 && errno != EAGAIN) {
          Fail(s, absl::StrCat("send: ", std::strerror(errno)));
        } else if (s.sent == s.request.size()) {
          epoll_event ev{};
          ev.events = EPOLLIN | EPOLLRDHUP;
          ev.data.u32 = events[e].data.u32;
          epoll_ctl(epoll, EPOLL_CTL_MOD, s.fd, &ev);
        }
      }
      if (!s.done &&
          (events[e].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
        for (;;) {
          ssize_t r = recv(s.fd, buffer, sizeof(buffer), 0);
          if (r > 0) {
            s.received.append(buffer, static_cast<size_t>(r));
            continue;
          }
          if (r == 0) {
            Inspect(s, now);
            Fail(s, "connection closed before the done event");
          } else if (errno != EAGAIN) {
            Fail(s, absl::StrCat("recv: ", std::strerror(errno)));
          }
          break;
        }
        if (!s.done) Inspect(s, now);
      }
      if (s.done) {
        close(s.fd);
        s.fd = -1;
        --open;
        std::string().swap(s.received);
      }
    }
  }
  const double wall = absl::ToDoubleSeconds(absl::Now() - t0);

  std::vector<double> first_ms;
  int failed = 0;
  std::string first_error;
  for (Stream& s : streams) {
    if (s.fd >= 0) Fail(s, "timed out");
    if (!s.error.empty()) {
      if (failed++ == 0) first_error = s.error;
    } else {
      first_ms.push_back(absl::ToDoubleMilliseconds(s.first_delta));
    }
  }
  std::sort(first_ms.begin(), first_ms.end());
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf(
      "streams: %d concurrent, %zu completed, %d failed%s\n", n,
      first_ms.size(), failed,
      failed ? absl::StrCat(" (first error: ", first_error, ")").c_str() : "");
  if (!first_ms.empty()) {
    std::printf("first delta: p50 %.1f ms, p99 %.1f ms; wall %.2f s\n",
                Percentile(first_ms, 50), Percentile(first_ms, 99), wall);
  }
  const double cpu = usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
                     (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  std::printf("load generator CPU: %.2f s\n", cpu);
  // One line for scripts (bench/run.sh).
  std::string error = first_error;
  for (char& c : error) {
    if (c == ' ' || c == '"') c = '_';
  }
  std::printf(
      "RESULT n=%d ok=%zu failed=%d wall_s=%.3f fb_p50_ms=%.1f fb_p99_ms=%.1f "
      "cpu_s=%.2f error=\"%s\"\n",
      n, first_ms.size(), failed, wall, Percentile(first_ms, 50),
      Percentile(first_ms, 99), cpu, error.c_str());
  return failed == 0 ? 0 : 1;
}
