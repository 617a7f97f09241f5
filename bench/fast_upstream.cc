// A fast fake LLM upstream for bench/run.sh: POST /v1/messages answered in
// Anthropic's streaming wire format (the event sequence of
// tests/fake_upstream/server.mjs, chunked as node's http server frames it:
// one chunk per event), on one thread with epoll, so the bench measures
// chatd rather than the fake. The node fake costs more CPU per turn than the
// path it is meant to feed. A request with "stream":false (a session's
// title) gets the same reply as one JSON message, as Anthropic sends it.
//
// Without --token_delay_ms the whole reply is written at once (a precomputed
// body, one write per response). With it, the deltas go out --token_delay_ms
// apart and the closing events one interval after the last delta: 20 tokens
// 50 ms apart is a one-second stream; a whole JSON reply then comes after
// as long as the stream would take. Every delay of a kind is the same, so
// each kind's timers are a FIFO (deadlines are pushed in order) and the
// epoll timeout is the earlier head's deadline: 10,000 concurrent streams
// cost one queue entry each.
//
// HTTP/1.1 keep-alive and pipelining; the body is read by Content-Length and
// discarded (its "model" is echoed, as the node fake does). Prints
// "fast-upstream listening on HOST:PORT" on stderr; SIGTERM or SIGINT exits 0.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "HOST:PORT to listen on");
ABSL_FLAG(int, tokens, 20, "text deltas per reply");
ABSL_FLAG(int, token_delay_ms, 0,
          "milliseconds between events after the first delta (0: the whole "
          "reply in one write)");

namespace {

constexpr size_t kMaxRequestBytes = 1 << 20;

// One event as node's http server writes it: a chunk of its own.
std::string Chunk(absl::string_view data) {
  return absl::StrCat(absl::Hex(data.size()), "\r\n", data, "\r\n");
}

std::string Event(absl::string_view name, absl::string_view data) {
  return Chunk(absl::StrCat("event: ", name, "\ndata: ", data, "\n\n"));
}

// The reply's parts; only message_start depends on the request.
struct Reply {
  std::string head;         // Status line and headers.
  std::string after_start;  // content_block_start and ping.
  std::vector<std::string> deltas;
  std::string end;         // content_block_stop .. message_stop, last chunk.
  std::string whole_tail;  // after_start + deltas + end (no delay).
  std::string text;        // The deltas' text, for a whole JSON reply.
  int tokens = 0;
};

Reply BuildReply(int tokens) {
  Reply r;
  r.head =
      "HTTP/1.1 200 OK\r\n"
      "content-type: text/event-stream; charset=utf-8\r\n"
      "cache-control: no-cache\r\n"
      "request-id: req_fake_ok\r\n"
      "Connection: keep-alive\r\n"
      "Keep-Alive: timeout=30\r\n"
      "Transfer-Encoding: chunked\r\n\r\n";
  r.after_start = Event("content_block_start",
                        R"({"type":"content_block_start","index":0,)"
                        R"("content_block":{"type":"text","text":""}})") +
                  Event("ping", R"({"type": "ping"})");
  for (int i = 0; i < tokens; ++i) {
    std::string word = absl::StrCat("word", i + 1, i + 1 < tokens ? " " : "");
    r.text += word;
    r.deltas.push_back(
        Event("content_block_delta",
              absl::StrCat(R"({"type":"content_block_delta","index":0,)",
                           R"("delta":{"type":"text_delta","text":")", word,
                           R"("}})")));
  }
  r.end = Event("content_block_stop",
                R"({"type":"content_block_stop","index":0})") +
          Event("message_delta",
                absl::StrCat(R"({"type":"message_delta","delta":)",
                             R"({"stop_reason":"end_turn",)",
                             R"("stop_sequence":null},)",
                             R"("usage":{"output_tokens":)", tokens, "}}")) +
          Event("message_stop", R"({"type":"message_stop"})") + "0\r\n\r\n";
  r.tokens = tokens;
  r.whole_tail = r.after_start;
  for (const std::string& d : r.deltas) r.whole_tail += d;
  r.whole_tail += r.end;
  return r;
}

std::string MessageStart(absl::string_view model, size_t input_tokens) {
  return Event(
      "message_start",
      absl::StrCat(R"({"type":"message_start","message":{"id":"msg_fake",)",
                   R"("type":"message","role":"assistant","content":[],)",
                   R"("model":")", model, R"(","stop_reason":null,)",
                   R"("stop_sequence":null,"usage":{"input_tokens":)",
                   input_tokens, R"(,"output_tokens":1}}})"));
}

// The reply as one JSON message (Anthropic's non-streaming answer), with
// its status line and headers.
std::string WholeAnswer(const Reply& reply, absl::string_view model,
                        size_t input_tokens) {
  std::string body = absl::StrCat(
      R"({"id":"msg_fake","type":"message","role":"assistant","model":")",
      model, R"(","content":[{"type":"text","text":")", reply.text,
      R"("}],"stop_reason":"end_turn","stop_sequence":null,)",
      R"("usage":{"input_tokens":)", input_tokens, R"(,"output_tokens":)",
      reply.tokens, "}}");
  return absl::StrCat(
      "HTTP/1.1 200 OK\r\n"
      "content-type: application/json\r\n"
      "request-id: req_fake_ok\r\n"
      "Connection: keep-alive\r\n"
      "Keep-Alive: timeout=30\r\n"
      "content-length: ",
      body.size(), "\r\n\r\n", body);
}

// The request's "model" if it is a plain JSON string, as the node fake echoes
// it; otherwise a fixed name.
absl::string_view ModelOf(absl::string_view body) {
  size_t k = body.find("\"model\"");
  if (k == body.npos) return "fast-upstream";
  size_t q = body.find('"', body.find(':', k + 7));
  if (q == body.npos) return "fast-upstream";
  size_t e = body.find('"', q + 1);
  if (e == body.npos) return "fast-upstream";
  absl::string_view m = body.substr(q + 1, e - q - 1);
  if (absl::StrContains(m, '\\') || m.size() > 200) return "fast-upstream";
  return m;
}

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

struct Conn {
  uint64_t generation = 0;
  bool open = false;
  bool close_after = false;  // "Connection: close": close once written.
  bool want_out = false;     // EPOLLOUT armed.
  int streaming = -1;  // Next delta to send with a delay; -1: not streaming.
  std::string held;    // A whole reply waiting for its delay; empty: none.
  std::string in;
  std::string out;
  size_t out_sent = 0;
};

struct Timer {
  int64_t due_ms;
  int fd;
  uint64_t generation;
};

class Server {
 public:
  Server(int listen_fd, int signal_fd, int tokens, int delay_ms)
      : listen_fd_(listen_fd),
        signal_fd_(signal_fd),
        delay_ms_(delay_ms),
        reply_(BuildReply(tokens)) {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    Add(listen_fd_, EPOLLIN);
    Add(signal_fd_, EPOLLIN);
  }

  void Run() {
    std::vector<epoll_event> events(1024);
    for (;;) {
      int timeout = -1;
      int64_t due = INT64_MAX;
      if (!timers_.empty()) due = timers_.front().due_ms;
      if (!whole_timers_.empty()) {
        due = std::min(due, whole_timers_.front().due_ms);
      }
      if (due != INT64_MAX) {
        int64_t wait = due - NowMs();
        timeout = wait < 0 ? 0 : static_cast<int>(wait);
      }
      int n = epoll_wait(epoll_, events.data(), events.size(), timeout);
      if (n < 0 && errno != EINTR) {
        perror("epoll_wait");
        return;
      }
      for (int i = 0; i < n; ++i) {
        int fd = events[i].data.fd;
        if (fd == signal_fd_) return;
        if (fd == listen_fd_) {
          Accept();
          continue;
        }
        if (events[i].events & (EPOLLERR | EPOLLHUP)) {
          Close(fd);
          continue;
        }
        if (events[i].events & EPOLLIN) Read(fd);
        if ((events[i].events & EPOLLOUT) && conns_[fd].open) Flush(fd);
      }
      RunTimers();
    }
  }

 private:
  void Add(int fd, uint32_t ev) {
    epoll_event e{};
    e.events = ev;
    e.data.fd = fd;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &e);
  }

  void Accept() {
    for (;;) {
      int fd =
          accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) perror("accept4");
        return;
      }
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      if (static_cast<size_t>(fd) >= conns_.size()) conns_.resize(fd + 1024);
      Conn& c = conns_[fd];
      uint64_t generation = c.generation + 1;
      c = Conn{};
      c.generation = generation;
      c.open = true;
      Add(fd, EPOLLIN);
    }
  }

  void Close(int fd) {
    Conn& c = conns_[fd];
    if (!c.open) return;
    c.open = false;
    ++c.generation;  // Pending timers for this fd are now stale.
    c.in = std::string();
    c.out = std::string();
    c.held = std::string();
    close(fd);
  }

  void Read(int fd) {
    Conn& c = conns_[fd];
    char buf[65536];
    for (;;) {
      ssize_t r = read(fd, buf, sizeof(buf));
      if (r > 0) {
        c.in.append(buf, r);
        if (c.in.size() > kMaxRequestBytes) return Close(fd);
        if (static_cast<size_t>(r) < sizeof(buf)) break;
        continue;
      }
      if (r == 0) return Close(fd);
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return Close(fd);
    }
    Serve(fd);
  }

  // Answers every complete request in the input, in order; a delayed stream
  // holds the ones behind it until it ends.
  void Serve(int fd) {
    Conn& c = conns_[fd];
    size_t pos = 0;
    while (c.open && !Busy(c) && !c.close_after) {
      absl::string_view in(c.in);
      in.remove_prefix(pos);
      size_t head_end = in.find("\r\n\r\n");
      if (head_end == in.npos) break;
      absl::string_view head = in.substr(0, head_end);
      size_t line_end = head.find("\r\n");
      absl::string_view line = head.substr(0, line_end);
      size_t content_length = 0;
      bool expect_continue = false;
      bool chunked = false;
      if (line_end != head.npos) {
        for (absl::string_view h :
             absl::StrSplit(head.substr(line_end + 2), "\r\n")) {
          size_t colon = h.find(':');
          if (colon == h.npos) continue;
          absl::string_view name = h.substr(0, colon);
          absl::string_view value =
              absl::StripAsciiWhitespace(h.substr(colon + 1));
          if (absl::EqualsIgnoreCase(name, "content-length")) {
            if (!absl::SimpleAtoi(value, &content_length)) return Close(fd);
          } else if (absl::EqualsIgnoreCase(name, "connection")) {
            if (absl::EqualsIgnoreCase(value, "close")) c.close_after = true;
          } else if (absl::EqualsIgnoreCase(name, "expect")) {
            expect_continue = absl::EqualsIgnoreCase(value, "100-continue");
          } else if (absl::EqualsIgnoreCase(name, "transfer-encoding")) {
            chunked = true;
          }
        }
      }
      if (chunked) {
        // Every client this feeds sends a Content-Length.
        c.out += "HTTP/1.1 411 Length Required\r\ncontent-length: 0\r\n\r\n";
        c.close_after = true;
        break;
      }
      size_t total = head_end + 4 + content_length;
      if (in.size() < total) {
        if (expect_continue && in.size() == head_end + 4) {
          c.out += "HTTP/1.1 100 Continue\r\n\r\n";
        }
        break;
      }
      absl::string_view body = in.substr(head_end + 4, content_length);
      pos += total;
      const absl::string_view model = ModelOf(body);
      const size_t input_tokens = (content_length + 3) / 4;
      if (!absl::StartsWith(line, "POST /v1/messages ")) {
        static constexpr absl::string_view kNotFound =
            R"({"type":"error","error":{"type":"not_found_error",)"
            R"("message":"no route"}})";
        absl::StrAppend(&c.out,
                        "HTTP/1.1 404 Not Found\r\n"
                        "content-type: application/json\r\n"
                        "content-length: ",
                        kNotFound.size(), "\r\n\r\n", kNotFound);
      } else if (absl::StrContains(body, "\"stream\":false")) {
        std::string answer = WholeAnswer(reply_, model, input_tokens);
        if (delay_ms_ <= 0) {
          c.out += answer;
        } else {
          c.held = std::move(answer);
          whole_timers_.push_back(
              {NowMs() + delay_ms_ * std::max(reply_.tokens, 1), fd,
               c.generation});
        }
      } else {
        c.out += reply_.head;
        c.out += MessageStart(model, input_tokens);
        if (delay_ms_ <= 0) {
          c.out += reply_.whole_tail;
        } else {
          c.out += reply_.after_start;
          if (!reply_.deltas.empty()) c.out += reply_.deltas[0];
          c.streaming = 1;
          timers_.push_back({NowMs() + delay_ms_, fd, c.generation});
        }
      }
    }
    if (pos > 0) c.in.erase(0, pos);
    Flush(fd);
  }

  void Flush(int fd) {
    Conn& c = conns_[fd];
    while (c.out_sent < c.out.size()) {
      ssize_t w = send(fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent,
                       MSG_NOSIGNAL);
      if (w > 0) {
        c.out_sent += w;
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (!c.want_out) Modify(fd, EPOLLIN | EPOLLOUT);
        c.want_out = true;
        return;
      }
      return Close(fd);
    }
    c.out.clear();
    c.out_sent = 0;
    if (c.want_out) Modify(fd, EPOLLIN);
    c.want_out = false;
    if (c.close_after && !Busy(c)) Close(fd);
  }

  // A delayed reply is still being sent: requests behind it wait.
  static bool Busy(const Conn& c) {
    return c.streaming >= 0 || !c.held.empty();
  }

  void Modify(int fd, uint32_t ev) {
    epoll_event e{};
    e.events = ev;
    e.data.fd = fd;
    epoll_ctl(epoll_, EPOLL_CTL_MOD, fd, &e);
  }

  void RunTimers() {
    int64_t now = NowMs();
    while (!whole_timers_.empty() && whole_timers_.front().due_ms <= now) {
      Timer t = whole_timers_.front();
      whole_timers_.pop_front();
      Conn& c = conns_[t.fd];
      if (!c.open || c.generation != t.generation || c.held.empty()) continue;
      c.out += c.held;
      c.held.clear();
      Flush(t.fd);
      if (conns_[t.fd].open && !conns_[t.fd].in.empty()) Serve(t.fd);
    }
    while (!timers_.empty() && timers_.front().due_ms <= now) {
      Timer t = timers_.front();
      timers_.pop_front();
      Conn& c = conns_[t.fd];
      if (!c.open || c.generation != t.generation || c.streaming < 0) continue;
      size_t n = reply_.deltas.size();
      if (static_cast<size_t>(c.streaming) < n) {
        c.out += reply_.deltas[c.streaming];
        ++c.streaming;
        timers_.push_back({t.due_ms + delay_ms_, t.fd, t.generation});
        Flush(t.fd);
      } else {
        c.out += reply_.end;
        c.streaming = -1;
        Flush(t.fd);
        // Requests pipelined behind the stream.
        if (conns_[t.fd].open && !conns_[t.fd].in.empty()) Serve(t.fd);
      }
    }
  }

  int epoll_ = -1;
  int listen_fd_;
  int signal_fd_;
  int delay_ms_;
  Reply reply_;
  std::vector<Conn> conns_;
  std::deque<Timer> timers_;
  std::deque<Timer> whole_timers_;  // Delayed whole replies.
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  std::string listen_addr = absl::GetFlag(FLAGS_listen);
  int tokens = absl::GetFlag(FLAGS_tokens);
  int delay_ms = absl::GetFlag(FLAGS_token_delay_ms);
  size_t colon = listen_addr.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(listen_addr.substr(colon + 1), &port) || tokens < 0 ||
      delay_ms < 0) {
    std::fprintf(stderr,
                 "fast-upstream: --listen=HOST:PORT, --tokens and "
                 "--token_delay_ms >= 0\n");
    return 2;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (inet_pton(AF_INET, listen_addr.substr(0, colon).c_str(),
                &addr.sin_addr) != 1) {
    std::fprintf(stderr, "fast-upstream: --listen: not an IPv4 address\n");
    return 2;
  }

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  int signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);

  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(fd, 65535) != 0) {
    perror("fast-upstream: bind/listen");
    return 1;
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  char host[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &addr.sin_addr, host, sizeof(host));
  std::fprintf(stderr, "fast-upstream listening on %s:%d\n", host,
               ntohs(addr.sin_port));

  Server(fd, signal_fd, tokens, delay_ms).Run();
  return 0;
}
