#ifndef CHAT_SERVER_LLM_CURL_MULTI_LOOP_H_
#define CHAT_SERVER_LLM_CURL_MULTI_LOOP_H_

#include <curl/curl.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/metrics.h"

namespace chat::llm {

class CurlHandle;

// One HTTP POST to send upstream.
struct HttpRequest {
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  // Longest wait to connect, counted from the start. For an https:// URL it
  // also covers the wait for room on a connection, or for one being set up
  // (see Origin in the .cc). More than 0.
  absl::Duration connect_timeout = absl::Seconds(10);
  // Longest wait from the start of the transfer to the first response byte,
  // then between two bytes of the response.
  absl::Duration first_byte_timeout = absl::Seconds(60);
  absl::Duration idle_timeout = absl::Seconds(60);
  // The transfer is aborted at this time whatever its progress.
  absl::Time deadline = absl::InfiniteFuture();
  // A PEM file of CAs to trust instead of the system's; empty: the system's.
  std::string ca_file;
};

// How a transfer ended, from the transport's point of view: an HTTP 4xx or
// 5xx is a response (curl_code CURLE_OK), not a failure here.
struct TransferOutcome {
  CURLcode curl_code = CURLE_OK;
  // curl's detailed message for curl_code (never holds request headers).
  std::string error;
  // True if the response's headers had arrived.
  bool got_response = false;
  // True if our first-byte or idle timer ended it (curl_code is then
  // CURLE_OPERATION_TIMEDOUT).
  bool stalled = false;
  // The handler returned false from OnBody.
  bool aborted_by_handler = false;
};

// Receives one transfer's events. All calls come from the loop's I/O thread,
// in order, and must not block.
class TransferHandler {
 public:
  virtual ~TransferHandler() = default;
  // The final response's status line and headers arrived (names lowercased;
  // a repeated header keeps its last value). Called at most once, before any
  // OnBody.
  virtual void OnResponse(
      int http_status, const std::map<std::string, std::string>& headers) = 0;
  // The next bytes of the body. Return false to abort the transfer.
  virtual bool OnBody(absl::string_view bytes) = 0;
  // The end, unless the transfer was aborted with AbortTransfer. Called once.
  virtual void OnDone(const TransferOutcome& outcome) = 0;
};

struct CurlMultiLoopOptions {
  // A transfer to a plain-HTTP upstream (one connection per transfer)
  // started while this many or more are running closes its connection
  // when it ends instead of keeping it idle for reuse: curl 7.88 walks
  // its whole connection cache when a transfer ends, so a cache of
  // thousands left by a burst of streams would cost O(n) per transfer.
  // Below it, connections are kept, and reused by the next transfers.
  int max_reused_connections = 256;
  // The provider label of the loop's gauges
  // (chatd_provider_connections_open, chatd_provider_requests_held).
  std::string provider;
};

// Runs every upstream HTTP transfer of the process on one libcurl multi
// handle driven by one I/O thread (curl_multi_socket_action over epoll, the
// shape of curl's docs/examples/hiperfifo.c), so thousands of concurrent
// streams cost file descriptors and memory, not threads. Connections are
// kept alive and reused, HTTP/2 is negotiated over TLS where offered and
// streams are multiplexed on it. A burst to an HTTP/2 server opens about one
// connection per 100 streams (libcurl's limit per connection), not one per
// stream (see Origin in the .cc). Also runs timers and posted closures on the
// same thread, so callers keep per-transfer state without locks.
// Thread-safe.
class CurlMultiLoop {
 public:
  using TransferId = uint64_t;

  // kInternal if curl or epoll cannot be set up.
  static absl::StatusOr<std::unique_ptr<CurlMultiLoop>> Create(
      CurlMultiLoopOptions options = CurlMultiLoopOptions());
  CurlMultiLoop(const CurlMultiLoop&) = delete;
  CurlMultiLoop& operator=(const CurlMultiLoop&) = delete;
  // Aborts the transfers still running (their handlers get OnDone with
  // CURLE_ABORTED_BY_CALLBACK), drops pending timers, joins the thread.
  ~CurlMultiLoop();

  // Starts `request`; `handler` is kept until its OnDone (or the abort).
  // A transfer that cannot be set up ends at once with OnDone (from the I/O
  // thread). Safe from any thread, and from a handler's callback (the
  // transfer then goes to curl once curl has returned).
  TransferId StartTransfer(HttpRequest request,
                           std::shared_ptr<TransferHandler> handler);

  // Aborts a transfer at once: the easy handle is removed and its connection
  // closed, or its stream reset on HTTP/2 (the server sees it go), and the
  // handler gets no further call. A no-op for a finished or unknown
  // transfer. I/O thread only; from a handler's callback too (the removal
  // of a transfer curl holds then waits for curl to return).
  void AbortTransfer(TransferId id);

  // Runs `fn` on the I/O thread, soon, in posting order. Safe from any thread.
  void Post(std::function<void()> fn);
  // Runs `fn` on the I/O thread at `when`. Safe from any thread.
  void RunAt(absl::Time when, std::function<void()> fn);

  bool InLoopThread() const {
    return std::this_thread::get_id() == thread_.get_id();
  }
  // Transfers currently running (for tests and benchmarks).
  int active_transfers() const { return active_count_.load(); }
  // Sockets curl holds open, to any host (for tests and benchmarks); an
  // upper bound while a socket curl closed without telling (see
  // OnOpenSocket) has not been found closed.
  int open_sockets() const { return open_sockets_.load(); }
  // Transfers the connection gate holds (for tests; operators read the
  // chatd_provider_requests_held gauge).
  int held_transfers() const { return held_count_.load(); }

 private:
  struct Transfer;
  struct Origin;

  explicit CurlMultiLoop(CurlMultiLoopOptions options);
  void Loop();
  void AddTransfer(TransferId id, HttpRequest request,
                   std::shared_ptr<TransferHandler> handler);
  // `reuse`: the transfer ended cleanly and its easy handle may serve the
  // next one.
  void RemoveTransfer(Transfer* t, bool reuse = false);
  void NoteActivity(Transfer* t);
  void CheckStalled(TransferId id, absl::Time scheduled_for);
  void ReapFinished();
  // Hands held transfers of `origin` to curl as far as its connections have
  // room (the gate in the .cc). Not from inside a curl call or callback.
  void ReleaseHeld(Origin* origin);
  // Notes that `origin`'s counts changed (safe anywhere, curl callbacks
  // included); ReleaseHeldOfChangedOrigins, run by the loop outside curl,
  // then calls ReleaseHeld for each origin noted.
  void MarkChanged(Origin* origin);
  void ReleaseHeldOfChangedOrigins();
  // Ends an https:// transfer not yet sent on a connection by its connect
  // timeout (or deadline), held or waiting inside curl, as curl ends one
  // that could not connect in time.
  void EndIfNotSent(TransferId id);
  // Drops `s` from the gate's sockets (closed, or found closed), and the
  // connection it counted as set up.
  void ForgetGatedSocket(curl_socket_t s);
  // Drops `s` from the open sockets (closed, or found closed), and from
  // the gate's.
  void ForgetSocket(curl_socket_t s);
  // Adds `delta` to the transfers `origin` holds, and to the loop's and the
  // process's counts of them.
  void CountHeld(Origin* origin, int delta);
  // Gives `t` to curl; if curl refuses it, ends it with OnDone.
  void AddToCurl(Transfer* t);
  // Learns from `t`'s response whether its origin multiplexes.
  void NoteResponseVersion(Transfer* t);
  int NextTimeoutMs();
  void RunDueTimers();
  void RunPosted();
  void Wake();

  static int OnSocket(CURL* easy, curl_socket_t s, int what, void* userp,
                      void* socketp);
  static int OnCurlTimer(CURLM* multi, long timeout_ms, void* userp);
  static size_t OnHeaderLine(char* data, size_t size, size_t n, void* userp);
  static size_t OnWrite(char* data, size_t size, size_t n, void* userp);
  static curl_socket_t OnOpenSocket(void* clientp, curlsocktype purpose,
                                    curl_sockaddr* address);
  static int OnCloseSocket(void* clientp, curl_socket_t s);
  static int OnConnectionReady(void* clientp, char* primary_ip, char* local_ip,
                               int primary_port, int local_port);

  const CurlMultiLoopOptions options_;
  Gauge& connections_gauge_;  // The process's, for options_.provider.
  Gauge& held_gauge_;
  CURLM* multi_ = nullptr;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // An eventfd: Post/RunAt/destructor wake epoll_wait.
  std::thread thread_;
  std::atomic<uint64_t> next_id_{1};
  std::atomic<int> active_count_{0};
  // The sockets of open_fds_: the connections in curl's cache, idle or not,
  // plus those being set up. Written on the I/O thread (and by the
  // destructor's curl_multi_cleanup); atomic for open_sockets().
  std::atomic<int> open_sockets_{0};
  // Written on the I/O thread; atomic for held_transfers().
  std::atomic<int> held_count_{0};

  // I/O thread only.
  absl::flat_hash_map<TransferId, std::unique_ptr<Transfer>> transfers_;
  // https:// origins ("https://host:port"), for the connection gate; few
  // (a provider's base URL or two), never erased.
  absl::node_hash_map<std::string, Origin> origins_;
  // Origins whose counts changed inside a curl callback, where no handle
  // may be added: ReleaseHeldOfChangedOrigins looks at them after.
  std::vector<Origin*> changed_origins_;
  // The sockets of https:// origins: their origin, the transfer that opened
  // them, and whether a transfer has been sent on them yet (a connection
  // set up, TLS included).
  struct GatedSocket {
    Origin* origin = nullptr;
    TransferId opener = 0;
    bool ready = false;
  };
  absl::flat_hash_map<curl_socket_t, GatedSocket> gated_sockets_;
  // Every socket OnOpenSocket opened and OnCloseSocket has not closed
  // (open_sockets_ is its size). Also touched by the destructor's
  // curl_multi_cleanup, after the thread has ended.
  absl::flat_hash_set<curl_socket_t> open_fds_;
  // True inside curl_multi_socket_action: no handle may be added then.
  bool in_curl_call_ = false;
  std::multimap<absl::Time, std::function<void()>> timers_;
  absl::Time curl_deadline_ = absl::InfiniteFuture();
  // Easy handles of transfers that ended cleanly, still configured with
  // everything but what differs per request (a fresh handle costs an
  // allocation of several KiB and its set-up). The connections themselves
  // live in the multi handle's cache either way.
  struct IdleHandle {
    std::unique_ptr<CurlHandle> handle;
    std::string ca_file;  // The CURLOPT_CAINFO it was configured with.
  };
  std::vector<IdleHandle> idle_handles_;

  absl::Mutex mu_;
  std::vector<std::function<void()>> posted_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<absl::Time, std::function<void()>>> new_timers_
      ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace chat::llm

#endif  // CHAT_SERVER_LLM_CURL_MULTI_LOOP_H_
