#include "server/llm/curl_multi_loop.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "server/llm/curl_handle.h"
#include "server/llm/provider_metrics.h"

namespace chat::llm {
namespace {

// Idle easy handles kept for reuse: enough for a burst of turns, few enough
// that memory goes back once a peak of streams is over.
constexpr size_t kMaxIdleHandles = 64;

// Most streams libcurl puts on one HTTP/2 connection: its default, pinned
// (CURLMOPT_MAX_CONCURRENT_STREAMS) because the gate (Origin) counts room
// by it. A server may allow fewer.
constexpr int kStreamsPerHttp2Connection = 100;

void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// Whether `fd` is a socket bound to local `port`.
bool HasLocalPort(curl_socket_t fd, int port) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0)
    return false;
  if (address.ss_family == AF_INET)
    return ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port) == port;
  if (address.ss_family == AF_INET6)
    return ntohs(reinterpret_cast<sockaddr_in6*>(&address)->sin6_port) == port;
  return false;
}

// The origin of an https:// URL ("https://host[:port]", lowercased, without
// the default port); "" for any other URL.
std::string HttpsOrigin(absl::string_view url) {
  constexpr absl::string_view kScheme = "https://";
  if (!absl::StartsWithIgnoreCase(url, kScheme)) return "";
  std::string origin = absl::AsciiStrToLower(
      url.substr(0, url.find_first_of("/?#", kScheme.size())));
  if (absl::EndsWith(origin, ":443")) origin.resize(origin.size() - 4);
  return origin;
}

}  // namespace

// The connection gate of an https:// origin.
//
// libcurl 7.88 makes a transfer wait (CURLOPT_PIPEWAIT) for a connection
// still being set up only while it does not know whether the host
// multiplexes. Once it knows, a transfer that finds every set-up connection
// at its stream limit opens a connection of its own rather than wait for one
// already on its way (lib/url.c, ConnectionExists). So a burst of 1,000
// streams over HTTPS opened 700-900 TLS connections where 10 do
// (bench/RESULTS.md), each a handshake of CPU and round trips before its
// stream's first byte.
//
// The loop therefore holds an origin's transfers itself. A held transfer
// goes to curl when the set-up connections have room for it
// (kStreamsPerHttp2Connection streams each), or as one of the openers the
// held transfers need (one per kStreamsPerHttp2Connection of them);
// otherwise it waits for an opener's connection to be set up, or for a
// transfer to end. After a lull, when none of the origin's transfers is in
// curl, one goes first and the rest once it is sent: curl closes the idle
// connections that have grown too old or that the server closed only when
// it next looks for one, and until then they would count as room.
//
// A transfer not yet sent at its connect timeout (or its deadline), held or
// parked inside curl behind a connection being set up, ends as one that
// could not connect in time would: the same retries and fallbacks follow.
// While an origin's responses come over HTTP/1.x, which never multiplexes,
// nothing is held. Before the first response the room is counted as if the
// server multiplexed; for one that does not, each connection set up makes
// room for more, so transfers go on a handshake or two later than without
// the gate, never stall. A server that allows fewer than 100 streams on a
// connection makes the room overcounted: curl then opens connections for
// the excess, as without the gate.
struct CurlMultiLoop::Origin {
  bool speaks_http1 = false;  // Its latest response came over HTTP/1.x.
  // Held transfers' ids, oldest first. An id whose transfer has ended is
  // skipped when reached (held_count is exact).
  std::deque<TransferId> held;
  int held_count = 0;
  int in_curl = 0;  // Transfers given to curl, not ended.
  int opening = 0;  // Of those, openers not yet sent on a connection.
  // Of those, one given to curl alone after a lull, not yet sent.
  bool probing = false;
  int ready_connections = 0;  // Set up (a transfer sent on them), not closed.
  bool changed = false;       // Listed in changed_origins_.
};

// One running transfer; lives in transfers_ from AddTransfer until it ends.
struct CurlMultiLoop::Transfer {
  TransferId id = 0;
  CurlMultiLoop* loop = nullptr;
  std::unique_ptr<CurlHandle> handle;
  std::string ca_file;  // As configured on `handle`.
  std::shared_ptr<TransferHandler> handler;
  // CURLOPT_POSTFIELDS does not copy: the body lives here.
  std::string body;
  std::map<std::string, std::string> headers;
  bool response_started = false;
  bool aborted_by_handler = false;
  // AbortTransfer was called inside a curl callback while curl held it;
  // removed once curl has returned.
  bool abort_requested = false;
  absl::Duration idle_timeout;
  // Moved by every byte received (to now + idle_timeout); CheckStalled ends
  // the transfer when it passes.
  absl::Time activity_deadline;
  // When the one live CheckStalled timer of this transfer fires; timers
  // scheduled for other times are stale and do nothing.
  absl::Time next_check;
  char error[CURL_ERROR_SIZE] = {0};
  // errno of a socket OnOpenSocket could not open, which curl does not keep
  // (it reports only "Couldn't connect to server"); 0: none failed.
  int socket_errno = 0;
  absl::Time deadline = absl::InfiniteFuture();
  bool in_curl = false;  // Added to the multi handle (not held, not ended).
  // The gate (https:// only; null otherwise).
  Origin* origin = nullptr;
  bool held = false;
  // Ends unless sent by then: the connect timeout from the request, or the
  // deadline.
  absl::Time send_by = absl::InfiniteFuture();
  bool sent = false;     // OnConnectionReady has run for it.
  bool opening = false;  // Given to curl as an opener, not yet sent.
  bool probe = false;    // Given to curl alone after a lull, not yet sent.
  // Sockets this transfer opened (a new connection, or happy eyeballs'
  // attempts at one); the one with the connection's local port when it is
  // sent is set up.
  std::vector<curl_socket_t> opened_sockets;
};

CurlMultiLoop::CurlMultiLoop(CurlMultiLoopOptions options)
    : options_(std::move(options)),
      connections_gauge_(ProviderMetrics::Get().connections_open.WithLabels(
          {options_.provider})),
      held_gauge_(ProviderMetrics::Get().requests_held.WithLabels(
          {options_.provider})) {}

absl::StatusOr<std::unique_ptr<CurlMultiLoop>> CurlMultiLoop::Create(
    CurlMultiLoopOptions options) {
  InitCurlOnce();
  std::unique_ptr<CurlMultiLoop> loop(new CurlMultiLoop(std::move(options)));
  loop->multi_ = curl_multi_init();
  if (loop->multi_ == nullptr)
    return absl::InternalError("curl_multi_init failed");
  loop->epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  loop->wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (loop->epoll_fd_ < 0 || loop->wake_fd_ < 0) {
    return absl::InternalError("cannot create epoll or eventfd descriptors");
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = loop->wake_fd_;
  if (epoll_ctl(loop->epoll_fd_, EPOLL_CTL_ADD, loop->wake_fd_, &ev) != 0) {
    return absl::InternalError("epoll_ctl on the wake-up eventfd failed");
  }
  CURLM* m = loop->multi_;
  CurlMultiLoop* self = loop.get();
  if (curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, &CurlMultiLoop::OnSocket) !=
          CURLM_OK ||
      curl_multi_setopt(m, CURLMOPT_SOCKETDATA, self) != CURLM_OK ||
      curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION,
                        &CurlMultiLoop::OnCurlTimer) != CURLM_OK ||
      curl_multi_setopt(m, CURLMOPT_TIMERDATA, self) != CURLM_OK ||
      // Many streams to one provider share a few HTTP/2 connections.
      curl_multi_setopt(m, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX) !=
          CURLM_OK ||
      // The gate's count of room per connection (Origin) is this.
      curl_multi_setopt(m, CURLMOPT_MAX_CONCURRENT_STREAMS,
                        static_cast<long>(kStreamsPerHttp2Connection)) !=
          CURLM_OK) {
    return absl::InternalError("curl_multi_setopt failed");
  }
  loop->thread_ = std::thread([self] { self->Loop(); });
  return loop;
}

CurlMultiLoop::~CurlMultiLoop() {
  if (thread_.joinable()) {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    Wake();
    thread_.join();
  }
  if (multi_ != nullptr) curl_multi_cleanup(multi_);
  // What is left was closed without OnCloseSocket (see OnOpenSocket).
  connections_gauge_.Decrement(static_cast<double>(open_fds_.size()));
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

void CurlMultiLoop::Wake() {
  uint64_t one = 1;
  // A full counter (impossible in practice) still leaves the fd readable.
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
}

void CurlMultiLoop::Post(std::function<void()> fn) {
  {
    absl::MutexLock lock(&mu_);
    posted_.push_back(std::move(fn));
  }
  Wake();
}

void CurlMultiLoop::RunAt(absl::Time when, std::function<void()> fn) {
  {
    absl::MutexLock lock(&mu_);
    new_timers_.emplace_back(when, std::move(fn));
  }
  Wake();
}

CurlMultiLoop::TransferId CurlMultiLoop::StartTransfer(
    HttpRequest request, std::shared_ptr<TransferHandler> handler) {
  TransferId id = next_id_.fetch_add(1);
  // On the I/O thread the transfer is added now, so an AbortTransfer(id)
  // that follows (a cancel posted before this call) finds it; posting it
  // would let that abort run first and miss.
  if (InLoopThread()) {
    AddTransfer(id, std::move(request), std::move(handler));
    return id;
  }
  Post([this, id, request = std::move(request),
        handler = std::move(handler)]() mutable {
    AddTransfer(id, std::move(request), std::move(handler));
  });
  return id;
}

void CurlMultiLoop::AddTransfer(TransferId id, HttpRequest request,
                                std::shared_ptr<TransferHandler> handler) {
  auto t = std::make_unique<Transfer>();
  t->id = id;
  t->loop = this;
  t->handler = handler;
  t->body = std::move(request.body);
  t->idle_timeout = request.idle_timeout;
  const absl::Time now = absl::Now();
  t->activity_deadline = now + request.first_byte_timeout;

  auto fail = [&](absl::Status why, CURLcode code) {
    TransferOutcome outcome;
    outcome.curl_code = code;
    outcome.error = std::string(why.message());
    handler->OnDone(outcome);
  };
  if (request.deadline <= now) {
    fail(absl::DeadlineExceededError("deadline passed"),
         CURLE_OPERATION_TIMEDOUT);
    return;
  }
  // A handle from an earlier transfer keeps the options every request
  // shares; one configured for another CA file starts over.
  bool configured = false;
  if (!idle_handles_.empty()) {
    IdleHandle idle = std::move(idle_handles_.back());
    idle_handles_.pop_back();
    t->handle = std::move(idle.handle);
    configured = idle.ca_file == request.ca_file;
    if (!configured) t->handle->Reset();
  } else {
    absl::StatusOr<std::unique_ptr<CurlHandle>> handle = CurlHandle::Create();
    if (!handle.ok()) {
      fail(handle.status(), CURLE_OUT_OF_MEMORY);
      return;
    }
    t->handle = *std::move(handle);
  }
  t->ca_file = std::move(request.ca_file);
  CurlHandle& h = *t->handle;
  std::vector<std::string> headers = std::move(request.headers);
  // curl would otherwise send "Expect: 100-continue" for large bodies and
  // wait a second for an answer many servers never send. First, so the
  // header lines a reused handle keeps are the ones that do not change.
  headers.insert(headers.begin(), "Expect:");
  t->deadline = request.deadline;
  // A plain-HTTP upstream speaks HTTP/1.1 (HTTP/2 is negotiated over TLS
  // only): each running transfer holds a connection of its own. To reuse one
  // curl 7.88 walks every connection to the host, busy ones included
  // (ConnectionExists), and when a transfer ends with its connection kept it
  // walks the whole cache again (curl_multi_remove_handle): with thousands
  // of streams in flight that is O(n) per transfer, most of the I/O thread.
  // So: no search while no connection can be idle (the sockets open are not
  // more than the running transfers, each holding one or none yet; at worst
  // an idle one is missed and the next transfer finds it), and under a burst
  // the connections close at the end instead of piling up idle. Over TLS,
  // HTTP/2 multiplexes ~100 streams per connection: the walks are short and
  // the search is what finds a connection to share, so it stays.
  const bool one_per_transfer =
      absl::StartsWithIgnoreCase(request.url, "http://");
  const size_t running = transfers_.size();
  const long fresh_connect =
      one_per_transfer &&
              static_cast<size_t>(std::max(0, open_sockets_.load())) <= running
          ? 1L
          : 0L;
  const long forbid_reuse =
      one_per_transfer &&
              running >= static_cast<size_t>(options_.max_reused_connections)
          ? 1L
          : 0L;
  absl::Status s = h.SetOption(CURLOPT_URL, request.url.c_str());
  for (absl::Status next : {
           h.SetHeaders(headers),
           h.SetOption(CURLOPT_POSTFIELDS, t->body.data()),
           h.SetOption(CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(t->body.size())),
           h.SetOption(CURLOPT_CONNECTTIMEOUT_MS,
                       static_cast<long>(
                           absl::ToInt64Milliseconds(request.connect_timeout))),
           h.SetOption(CURLOPT_ERRORBUFFER, t->error),
           h.SetOption(CURLOPT_PRIVATE, static_cast<void*>(t.get())),
           h.SetOption(CURLOPT_HEADERDATA, static_cast<void*>(t.get())),
           h.SetOption(CURLOPT_WRITEDATA, static_cast<void*>(t.get())),
           h.SetOption(CURLOPT_OPENSOCKETDATA, static_cast<void*>(t.get())),
           h.SetOption(CURLOPT_PREREQDATA, static_cast<void*>(t.get())),
           h.SetOption(CURLOPT_FRESH_CONNECT, fresh_connect),
           h.SetOption(CURLOPT_FORBID_REUSE, forbid_reuse),
       }) {
    s.Update(next);
  }
  if (!configured) {
    for (absl::Status next : {
             h.SetOption(CURLOPT_POST, 1L),
             h.SetOption(CURLOPT_NOSIGNAL, 1L),
             h.SetOption(CURLOPT_HTTP_VERSION,
                         static_cast<long>(CURL_HTTP_VERSION_2TLS)),
             // Wait for a multiplexable HTTP/2 connection rather than open
             // a new one per stream.
             h.SetOption(CURLOPT_PIPEWAIT, 1L),
             h.SetOption(CURLOPT_TCP_KEEPALIVE, 1L),
             h.SetOption(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L),
             h.SetOption(CURLOPT_HEADERFUNCTION, &CurlMultiLoop::OnHeaderLine),
             h.SetOption(CURLOPT_WRITEFUNCTION, &CurlMultiLoop::OnWrite),
             // A socket is opened for a transfer (its data, set above), but
             // closed for the loop: a connection outlives its transfer.
             h.SetOption(CURLOPT_OPENSOCKETFUNCTION,
                         &CurlMultiLoop::OnOpenSocket),
             h.SetOption(CURLOPT_CLOSESOCKETFUNCTION,
                         &CurlMultiLoop::OnCloseSocket),
             h.SetOption(CURLOPT_CLOSESOCKETDATA, static_cast<void*>(this)),
             h.SetOption(CURLOPT_PREREQFUNCTION,
                         &CurlMultiLoop::OnConnectionReady),
         }) {
      s.Update(next);
    }
    if (!t->ca_file.empty())
      s.Update(h.SetOption(CURLOPT_CAINFO, t->ca_file.c_str()));
  }
  if (!s.ok()) {
    fail(s, CURLE_FAILED_INIT);
    return;
  }
  const std::string origin_key = HttpsOrigin(request.url);
  Transfer* added = t.get();
  const absl::Time check_at = t->activity_deadline;
  t->next_check = check_at;
  transfers_.emplace(id, std::move(t));
  active_count_.fetch_add(1);
  timers_.emplace(check_at,
                  [this, id, check_at] { CheckStalled(id, check_at); });
  if (origin_key.empty()) {
    // Inside a curl callback (a handler's OnBody starting a transfer) curl
    // refuses a new handle: it is added once curl has returned.
    if (in_curl_call_) {
      Post([this, id] {
        auto it = transfers_.find(id);
        if (it != transfers_.end() && !it->second->in_curl)
          AddToCurl(it->second.get());
      });
    } else {
      AddToCurl(added);
    }
    return;
  }
  Origin* origin = &origins_[origin_key];
  added->origin = origin;
  added->held = true;
  added->send_by = std::min(now + request.connect_timeout, request.deadline);
  origin->held.push_back(id);
  CountHeld(origin, 1);
  timers_.emplace(added->send_by, [this, id] { EndIfNotSent(id); });
  // A handler may start a transfer from inside a curl callback (OnBody),
  // where no handle may be added: the loop releases it after.
  if (in_curl_call_) {
    MarkChanged(origin);
  } else {
    ReleaseHeld(origin);
  }
}

void CurlMultiLoop::EndIfNotSent(TransferId id) {
  auto it = transfers_.find(id);
  if (it == transfers_.end() || it->second->sent) return;
  Transfer* t = it->second.get();
  TransferOutcome outcome;
  outcome.curl_code = CURLE_OPERATION_TIMEDOUT;
  // Which wait it was, for the operator reading the provider's error.
  if (t->send_by == t->deadline) {
    outcome.error = "deadline passed before a connection was set up";
  } else if (t->held) {
    outcome.error = "held for a connection being set up";
  } else if (!t->opened_sockets.empty()) {
    outcome.error = "its connection (TCP and TLS) was not set up in time";
  } else {
    outcome.error =
        "no connection set up in time (name lookup, or one being set up)";
  }
  std::shared_ptr<TransferHandler> handler = t->handler;
  RemoveTransfer(t);
  handler->OnDone(outcome);
}

void CurlMultiLoop::AddToCurl(Transfer* t) {
  // The deadline counts from the request, a held transfer's wait included.
  long timeout_ms = 0;  // 0: no overall limit.
  if (t->deadline != absl::InfiniteFuture()) {
    timeout_ms = std::max<long>(1, static_cast<long>(absl::ToInt64Milliseconds(
                                       t->deadline - absl::Now())));
  }
  absl::Status s = t->handle->SetOption(CURLOPT_TIMEOUT_MS, timeout_ms);
  if (s.ok()) {
    if (CURLMcode mc = curl_multi_add_handle(multi_, t->handle->get());
        mc != CURLM_OK) {
      s = absl::InternalError(curl_multi_strerror(mc));
    }
  }
  if (!s.ok()) {
    TransferOutcome outcome;
    outcome.curl_code = CURLE_FAILED_INIT;
    outcome.error = std::string(s.message());
    std::shared_ptr<TransferHandler> handler = t->handler;
    RemoveTransfer(t);
    handler->OnDone(outcome);
    return;
  }
  t->in_curl = true;
  if (t->origin != nullptr) {
    ++t->origin->in_curl;
    if (t->opening) ++t->origin->opening;
    if (t->probe) t->origin->probing = true;
  }
}

void CurlMultiLoop::ReleaseHeld(Origin* origin) {
  while (origin->held_count > 0) {
    bool as_opener = false;
    bool as_probe = false;
    if (!origin->speaks_http1) {
      if (origin->probing) return;
      const int room = kStreamsPerHttp2Connection * origin->ready_connections -
                       (origin->in_curl - origin->opening);
      if (origin->in_curl == 0 && origin->ready_connections > 0) {
        as_probe = true;
      } else if (room <= 0) {
        const int openers_wanted =
            (origin->held_count + kStreamsPerHttp2Connection - 1) /
            kStreamsPerHttp2Connection;
        if (origin->opening >= openers_wanted) return;
        as_opener = true;
      }
    }
    Transfer* t = nullptr;
    while (t == nullptr && !origin->held.empty()) {
      const TransferId id = origin->held.front();
      origin->held.pop_front();
      auto it = transfers_.find(id);
      if (it != transfers_.end() && it->second->held) t = it->second.get();
    }
    if (t == nullptr) {  // A bug: held_count counts the ids held.
      LogError("CurlMultiLoop: an origin's held count exceeds its held ids");
      std::abort();
    }
    t->held = false;
    CountHeld(origin, -1);
    t->opening = as_opener;
    t->probe = as_probe;
    AddToCurl(t);
  }
}

void CurlMultiLoop::CountHeld(Origin* origin, int delta) {
  origin->held_count += delta;
  held_count_.fetch_add(delta, std::memory_order_relaxed);
  held_gauge_.Increment(delta);
}

void CurlMultiLoop::MarkChanged(Origin* origin) {
  if (origin->changed) return;
  origin->changed = true;
  changed_origins_.push_back(origin);
}

void CurlMultiLoop::ReleaseHeldOfChangedOrigins() {
  std::vector<Origin*> changed;
  changed.swap(changed_origins_);
  for (Origin* origin : changed) {
    origin->changed = false;
    ReleaseHeld(origin);
  }
}

void CurlMultiLoop::NoteResponseVersion(Transfer* t) {
  if (t->origin == nullptr) return;
  long version = CURL_HTTP_VERSION_NONE;
  curl_easy_getinfo(t->handle->get(), CURLINFO_HTTP_VERSION, &version);
  if (version == CURL_HTTP_VERSION_NONE) return;
  t->origin->speaks_http1 = version < CURL_HTTP_VERSION_2_0;
  MarkChanged(t->origin);
}

void CurlMultiLoop::RemoveTransfer(Transfer* t, bool reuse) {
  if (t->in_curl) {
    curl_multi_remove_handle(multi_, t->handle->get());
    t->in_curl = false;
    if (t->origin != nullptr) {
      --t->origin->in_curl;
      if (t->opening) --t->origin->opening;
      if (t->probe) t->origin->probing = false;
      MarkChanged(t->origin);
    }
  } else if (t->held) {
    CountHeld(t->origin, -1);  // Its id is skipped when reached.
  }
  active_count_.fetch_sub(1);
  if (reuse && idle_handles_.size() < kMaxIdleHandles) {
    // Nothing may point at the transfer's error buffer once it is gone.
    curl_easy_setopt(t->handle->get(), CURLOPT_ERRORBUFFER, nullptr);
    idle_handles_.push_back({std::move(t->handle), std::move(t->ca_file)});
  }
  transfers_.erase(t->id);  // Destroys t (and closes a connection in use).
}

void CurlMultiLoop::AbortTransfer(TransferId id) {
  auto it = transfers_.find(id);
  if (it == transfers_.end()) return;
  // Inside a curl callback curl refuses to remove a handle it holds, and
  // the handle must outlive the call: such a transfer is silenced now (its
  // callbacks end it without reaching the handler) and removed once curl
  // has returned. One curl does not hold (held, or waiting to be added)
  // goes at once.
  if (in_curl_call_ && it->second->in_curl) {
    it->second->abort_requested = true;
    Post([this, id] { AbortTransfer(id); });
    return;
  }
  RemoveTransfer(it->second.get());
}

void CurlMultiLoop::NoteActivity(Transfer* t) {
  t->activity_deadline = absl::Now() + t->idle_timeout;
  // The idle timeout may be shorter than the first-byte wait the live timer
  // was set for: check sooner.
  if (t->activity_deadline < t->next_check) {
    const absl::Time check_at = t->activity_deadline;
    const TransferId id = t->id;
    t->next_check = check_at;
    timers_.emplace(check_at,
                    [this, id, check_at] { CheckStalled(id, check_at); });
  }
}

void CurlMultiLoop::CheckStalled(TransferId id, absl::Time scheduled_for) {
  auto it = transfers_.find(id);
  if (it == transfers_.end()) return;
  Transfer* t = it->second.get();
  if (scheduled_for != t->next_check)
    return;  // Superseded by an earlier check.
  if (absl::Now() < t->activity_deadline) {
    const absl::Time check_at = t->activity_deadline;
    t->next_check = check_at;
    timers_.emplace(check_at,
                    [this, id, check_at] { CheckStalled(id, check_at); });
    return;
  }
  TransferOutcome outcome;
  outcome.curl_code = CURLE_OPERATION_TIMEDOUT;
  outcome.stalled = true;
  outcome.got_response = t->response_started;
  outcome.error = t->response_started
                      ? "no data received within the idle timeout"
                      : "no response within the first-byte timeout";
  std::shared_ptr<TransferHandler> handler = t->handler;
  RemoveTransfer(t);
  handler->OnDone(outcome);
}

size_t CurlMultiLoop::OnHeaderLine(char* data, size_t size, size_t n,
                                   void* userp) {
  auto* t = static_cast<Transfer*>(userp);
  if (t->abort_requested) return 0;  // Any other count ends the transfer.
  const size_t bytes = size * n;
  absl::string_view line(data, bytes);
  t->loop->NoteActivity(t);
  if (absl::StartsWith(line, "HTTP/")) {
    t->headers.clear();  // A new response (after a 100 Continue, say).
    return bytes;
  }
  line = absl::StripTrailingAsciiWhitespace(line);
  if (line.empty()) {
    long code = 0;
    curl_easy_getinfo(t->handle->get(), CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200 && !t->response_started) {
      t->response_started = true;
      t->loop->NoteResponseVersion(t);
      t->handler->OnResponse(static_cast<int>(code), t->headers);
    }
    return bytes;
  }
  size_t colon = line.find(':');
  if (colon != absl::string_view::npos) {
    t->headers[absl::AsciiStrToLower(line.substr(0, colon))] =
        std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
  }
  return bytes;
}

size_t CurlMultiLoop::OnWrite(char* data, size_t size, size_t n, void* userp) {
  auto* t = static_cast<Transfer*>(userp);
  if (t->abort_requested) return 0;
  const size_t bytes = size * n;
  t->loop->NoteActivity(t);
  if (!t->response_started) {
    long code = 0;
    curl_easy_getinfo(t->handle->get(), CURLINFO_RESPONSE_CODE, &code);
    t->response_started = true;
    t->loop->NoteResponseVersion(t);
    t->handler->OnResponse(static_cast<int>(code), t->headers);
    if (t->abort_requested) return 0;  // Aborted by OnResponse.
  }
  if (!t->handler->OnBody(absl::string_view(data, bytes))) {
    t->aborted_by_handler = true;
    return 0;  // CURLE_WRITE_ERROR ends the transfer.
  }
  return t->abort_requested ? 0 : bytes;  // 0: aborted by OnBody.
}

curl_socket_t CurlMultiLoop::OnOpenSocket(void* clientp,
                                          curlsocktype /*purpose*/,
                                          curl_sockaddr* address) {
  auto* t = static_cast<Transfer*>(clientp);
  int fd = socket(address->family, address->socktype | SOCK_CLOEXEC,
                  address->protocol);
  // The latest attempt's: a later socket that opens clears an earlier one.
  t->socket_errno = fd < 0 ? errno : 0;
  if (fd < 0) return CURL_SOCKET_BAD;
  CurlMultiLoop* loop = t->loop;
  // libcurl 7.88 closes a socket still being set up without calling
  // OnCloseSocket (curl pull request #11439; a connection abandoned while
  // being set up, a losing happy-eyeballs attempt). The kernel hands
  // its number out again, which shows it gone: it is forgotten now.
  loop->ForgetSocket(fd);
  loop->open_fds_.insert(fd);
  loop->open_sockets_.fetch_add(1, std::memory_order_relaxed);
  loop->connections_gauge_.Increment();
  if (t->origin != nullptr) {
    loop->gated_sockets_[fd] = GatedSocket{t->origin, t->id, false};
    t->opened_sockets.push_back(fd);
  }
  return fd;
}

int CurlMultiLoop::OnCloseSocket(void* clientp, curl_socket_t s) {
  auto* loop = static_cast<CurlMultiLoop*>(clientp);
  loop->ForgetSocket(s);
  return close(s);
}

void CurlMultiLoop::ForgetSocket(curl_socket_t s) {
  if (open_fds_.erase(s) == 1) {
    open_sockets_.fetch_sub(1, std::memory_order_relaxed);
    connections_gauge_.Decrement();
  }
  ForgetGatedSocket(s);
}

void CurlMultiLoop::ForgetGatedSocket(curl_socket_t s) {
  auto it = gated_sockets_.find(s);
  if (it == gated_sockets_.end()) return;
  if (it->second.ready) --it->second.origin->ready_connections;
  MarkChanged(it->second.origin);
  gated_sockets_.erase(it);
}

int CurlMultiLoop::OnConnectionReady(void* clientp, char* /*primary_ip*/,
                                     char* /*local_ip*/, int /*primary_port*/,
                                     int local_port) {
  auto* t = static_cast<Transfer*>(clientp);
  // Aborted inside a curl callback and not yet removed: nothing goes out,
  // after the gate has counted the connection (curl may keep it).
  const int go_on =
      t->abort_requested ? CURL_PREREQFUNC_ABORT : CURL_PREREQFUNC_OK;
  if (t->origin == nullptr) return go_on;
  CurlMultiLoop* loop = t->loop;
  t->sent = true;
  if (t->opening) {
    t->opening = false;
    --t->origin->opening;
  }
  if (t->probe) {
    t->probe = false;
    t->origin->probing = false;
  }
  // A transfer sends on the connection it opened, if it opened one: of
  // happy eyeballs' attempts, the socket with the connection's local port.
  // The others lost; libcurl 7.88 closes those without OnCloseSocket (curl
  // pull request #11439, fixed in 8.2.0), so they are forgotten here. An
  // attempt whose number is already another transfer's was forgotten when
  // that one opened it. One at most is set up, should an unrelated socket
  // have the same local port.
  bool set_up = false;
  for (curl_socket_t fd : t->opened_sockets) {
    auto it = loop->gated_sockets_.find(fd);
    if (it == loop->gated_sockets_.end() || it->second.opener != t->id ||
        it->second.ready) {
      continue;
    }
    if (!set_up && (local_port <= 0 || HasLocalPort(fd, local_port))) {
      it->second.ready = true;
      ++it->second.origin->ready_connections;
      set_up = true;
    } else {
      loop->ForgetSocket(fd);
    }
  }
  t->opened_sockets.clear();
  loop->MarkChanged(t->origin);
  return go_on;
}

int CurlMultiLoop::OnSocket(CURL* /*easy*/, curl_socket_t s, int what,
                            void* userp, void* socketp) {
  auto* loop = static_cast<CurlMultiLoop*>(userp);
  if (what == CURL_POLL_REMOVE) {
    // Fails harmlessly if curl already closed it (close removes it too).
    epoll_ctl(loop->epoll_fd_, EPOLL_CTL_DEL, s, nullptr);
    return 0;
  }
  epoll_event ev{};
  ev.data.fd = s;
  if (what & CURL_POLL_IN) ev.events |= EPOLLIN;
  if (what & CURL_POLL_OUT) ev.events |= EPOLLOUT;
  int op = socketp == nullptr ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
  if (epoll_ctl(loop->epoll_fd_, op, s, &ev) != 0) {
    // Our bookkeeping and the kernel's disagree (a reused descriptor
    // number): do what the kernel needs.
    op = errno == EEXIST ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    epoll_ctl(loop->epoll_fd_, op, s, &ev);
  }
  if (socketp == nullptr) {
    curl_multi_assign(loop->multi_, s, reinterpret_cast<void*>(1));
  }
  return 0;
}

int CurlMultiLoop::OnCurlTimer(CURLM* /*multi*/, long timeout_ms, void* userp) {
  auto* loop = static_cast<CurlMultiLoop*>(userp);
  loop->curl_deadline_ = timeout_ms < 0
                             ? absl::InfiniteFuture()
                             : absl::Now() + absl::Milliseconds(timeout_ms);
  return 0;
}

int CurlMultiLoop::NextTimeoutMs() {
  absl::Time next = curl_deadline_;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [when, fn] : new_timers_) timers_.emplace(when, std::move(fn));
    new_timers_.clear();
    if (!posted_.empty() || stopping_) return 0;
  }
  // Held transfers that a handler's OnDone made room for (inside
  // ReleaseHeld) go on now, not at the next event.
  if (!changed_origins_.empty()) return 0;
  if (!timers_.empty()) next = std::min(next, timers_.begin()->first);
  if (next == absl::InfiniteFuture()) return -1;
  absl::Duration wait = next - absl::Now();
  if (wait <= absl::ZeroDuration()) return 0;
  return static_cast<int>(std::min<int64_t>(
      60000,
      absl::ToInt64Milliseconds(absl::Ceil(wait, absl::Milliseconds(1)))));
}

void CurlMultiLoop::RunDueTimers() {
  const absl::Time now = absl::Now();
  while (!timers_.empty() && timers_.begin()->first <= now) {
    auto node = timers_.extract(timers_.begin());
    node.mapped()();
  }
}

void CurlMultiLoop::RunPosted() {
  std::vector<std::function<void()>> posted;
  {
    absl::MutexLock lock(&mu_);
    posted.swap(posted_);
  }
  for (auto& fn : posted) fn();
}

void CurlMultiLoop::ReapFinished() {
  int queued = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_, &queued)) {
    if (msg->msg != CURLMSG_DONE) continue;
    void* priv = nullptr;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
    auto* t = static_cast<Transfer*>(priv);
    if (t->abort_requested) {  // Aborted: the handler hears nothing more.
      RemoveTransfer(t);
      continue;
    }
    TransferOutcome outcome;
    outcome.curl_code = msg->data.result;
    outcome.got_response = t->response_started;
    outcome.aborted_by_handler = t->aborted_by_handler;
    if (outcome.curl_code != CURLE_OK) {
      outcome.error = t->error[0] != '\0'
                          ? std::string(t->error)
                          : curl_easy_strerror(outcome.curl_code);
      // curl names the step that failed ("Couldn't connect to server"); the
      // system's reason (refused, no free local port, no descriptor left)
      // is what tells an operator what to fix. Only for a connection that
      // was never made: curl's errno is its latest failure, which after a
      // connect that succeeded on a second address would name the wrong
      // cause of a later error.
      long os_errno = 0;
      if (outcome.curl_code == CURLE_COULDNT_CONNECT &&
          (curl_easy_getinfo(msg->easy_handle, CURLINFO_OS_ERRNO, &os_errno) !=
               CURLE_OK ||
           os_errno == 0)) {
        os_errno = t->socket_errno;
      }
      if (os_errno != 0) {
        char text[128];
        // The GNU strerror_r (C++ compilers define _GNU_SOURCE): the
        // returned pointer, not necessarily `text`, holds the message.
        const char* reason =
            strerror_r(static_cast<int>(os_errno), text, sizeof(text));
        if (!absl::StrContains(outcome.error, reason)) {
          absl::StrAppend(&outcome.error, " (", reason, ")");
        }
      }
    }
    std::shared_ptr<TransferHandler> handler = t->handler;
    RemoveTransfer(t, /*reuse=*/outcome.curl_code == CURLE_OK);
    handler->OnDone(outcome);
  }
}

void CurlMultiLoop::Loop() {
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  int running = 0;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
    }
    int n = epoll_wait(epoll_fd_, events, kMaxEvents, NextTimeoutMs());
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == wake_fd_) {
        uint64_t count;
        [[maybe_unused]] ssize_t r = read(wake_fd_, &count, sizeof(count));
        continue;
      }
      int flags = 0;
      if (events[i].events & EPOLLIN) flags |= CURL_CSELECT_IN;
      if (events[i].events & EPOLLOUT) flags |= CURL_CSELECT_OUT;
      if (events[i].events & (EPOLLERR | EPOLLHUP)) flags |= CURL_CSELECT_ERR;
      in_curl_call_ = true;
      curl_multi_socket_action(multi_, fd, flags, &running);
      in_curl_call_ = false;
    }
    if (curl_deadline_ <= absl::Now()) {
      curl_deadline_ = absl::InfiniteFuture();
      in_curl_call_ = true;
      curl_multi_socket_action(multi_, CURL_SOCKET_TIMEOUT, 0, &running);
      in_curl_call_ = false;
    }
    ReapFinished();
    RunPosted();
    RunDueTimers();
    ReapFinished();
    ReleaseHeldOfChangedOrigins();
  }
  // Shutting down: nobody may wait forever. Every transfer ends with an
  // error, and posted work and the timers pending at each round still run,
  // whatever their time (a retry's timer starts an attempt, which the next
  // round ends), until nothing is left. Timers scheduled by a round run in
  // the next one, so a self-rescheduling check cannot spin; bounded in case
  // handlers keep scheduling work.
  auto end_all_transfers = [this] {
    while (!transfers_.empty()) {
      Transfer* t = transfers_.begin()->second.get();
      TransferOutcome outcome;
      outcome.curl_code = CURLE_ABORTED_BY_CALLBACK;
      outcome.error = "the server is shutting down";
      std::shared_ptr<TransferHandler> handler = t->handler;
      RemoveTransfer(t);
      handler->OnDone(outcome);
    }
  };
  for (int round = 0; round < 100; ++round) {
    RunPosted();
    end_all_transfers();
    {
      absl::MutexLock lock(&mu_);
      for (auto& [when, fn] : new_timers_) timers_.emplace(when, std::move(fn));
      new_timers_.clear();
    }
    std::multimap<absl::Time, std::function<void()>> pending;
    pending.swap(timers_);
    for (auto& [when, fn] : pending) fn();
    end_all_transfers();
    absl::MutexLock lock(&mu_);
    if (posted_.empty() && new_timers_.empty() && timers_.empty()) break;
  }
  timers_.clear();
  idle_handles_.clear();  // Before the multi handle goes.
}

}  // namespace chat::llm
