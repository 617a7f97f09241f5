#include "server/llm/curl_multi_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/llm/curl_handle.h"

namespace chat::llm {
namespace {

// Idle easy handles kept for reuse: enough for a burst of turns, few enough
// that memory goes back once a peak of streams is over.
constexpr size_t kMaxIdleHandles = 64;

void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

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
};

CurlMultiLoop::CurlMultiLoop(CurlMultiLoopOptions options)
    : options_(options) {}

absl::StatusOr<std::unique_ptr<CurlMultiLoop>> CurlMultiLoop::Create(
    CurlMultiLoopOptions options) {
  InitCurlOnce();
  std::unique_ptr<CurlMultiLoop> loop(new CurlMultiLoop(options));
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
  long timeout_ms = 0;  // 0: no overall limit.
  if (request.deadline != absl::InfiniteFuture()) {
    timeout_ms = std::max<long>(
        1,
        static_cast<long>(absl::ToInt64Milliseconds(request.deadline - now)));
  }
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
           h.SetOption(CURLOPT_TIMEOUT_MS, timeout_ms),
           h.SetOption(CURLOPT_ERRORBUFFER, t->error),
           h.SetOption(CURLOPT_PRIVATE, static_cast<void*>(t.get())),
           h.SetOption(CURLOPT_HEADERDATA, static_cast<void*>(t.get())),
           h.SetOption(CURLOPT_WRITEDATA, static_cast<void*>(t.get())),
           h.SetOption(CURLOPT_OPENSOCKETDATA, static_cast<void*>(t.get())),
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
  if (CURLMcode mc = curl_multi_add_handle(multi_, h.get()); mc != CURLM_OK) {
    fail(absl::InternalError(curl_multi_strerror(mc)), CURLE_FAILED_INIT);
    return;
  }
  const absl::Time check_at = t->activity_deadline;
  t->next_check = check_at;
  transfers_.emplace(id, std::move(t));
  active_count_.fetch_add(1);
  timers_.emplace(check_at,
                  [this, id, check_at] { CheckStalled(id, check_at); });
}

void CurlMultiLoop::RemoveTransfer(Transfer* t, bool reuse) {
  curl_multi_remove_handle(multi_, t->handle->get());
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
  const size_t bytes = size * n;
  t->loop->NoteActivity(t);
  if (!t->response_started) {
    long code = 0;
    curl_easy_getinfo(t->handle->get(), CURLINFO_RESPONSE_CODE, &code);
    t->response_started = true;
    t->handler->OnResponse(static_cast<int>(code), t->headers);
  }
  if (!t->handler->OnBody(absl::string_view(data, bytes))) {
    t->aborted_by_handler = true;
    return 0;  // CURLE_WRITE_ERROR ends the transfer.
  }
  return bytes;
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
  t->loop->open_sockets_.fetch_add(1, std::memory_order_relaxed);
  return fd;
}

int CurlMultiLoop::OnCloseSocket(void* clientp, curl_socket_t s) {
  auto* loop = static_cast<CurlMultiLoop*>(clientp);
  loop->open_sockets_.fetch_sub(1, std::memory_order_relaxed);
  return close(s);
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
      curl_multi_socket_action(multi_, fd, flags, &running);
    }
    if (curl_deadline_ <= absl::Now()) {
      curl_deadline_ = absl::InfiniteFuture();
      curl_multi_socket_action(multi_, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    ReapFinished();
    RunPosted();
    RunDueTimers();
    ReapFinished();
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
