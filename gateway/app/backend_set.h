#ifndef CHAT_GATEWAY_APP_BACKEND_SET_H_
#define CHAT_GATEWAY_APP_BACKEND_SET_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gateway/app/backend_channel.h"
#include "grpcpp/channel.h"
#include "grpcpp/completion_queue.h"

namespace chat::gateway {

// The channels to chat-server that the gateway's calls are spread over, one
// per target of --backend (see BackendTargets): usually one channel, on
// which gRPC's round_robin balances over the addresses; one per entry when
// --backend lists several names, since a gRPC 1.51 channel resolves one name.
//
// With several channels a call goes to a READY channel (one whose
// connection is up and whose backend's health says SERVING), round robin
// over the READY ones; a channel that is down or NOT_SERVING gets no new
// calls. While none is READY a call waits until one is (or until its
// deadline): a call made with wait_for_ready on one channel would wait for
// that one alone while another came back. A thread watches the channels'
// states for those waiting calls. With one channel every call goes to it
// at once and waits there with wait_for_ready, as before there was a set.
//
// A channel that looks a DNS name up (BackendChannel::remake) and has not
// been READY for kRemakeAfter is replaced by a fresh one, at most once per
// kRemakeAfter: gRPC 1.51 would look the name up again only at the end of
// a backoff that grows to 120 s (see BackendChannel), so a replaced server
// was used ~30 s late. The calls of such a set wait in the set even with
// one channel (in gRPC they would wait on the channel being replaced) and
// start on the new one once it is READY; the watcher thread runs then too.
//
// Thread-safe.
class BackendSet {
 public:
  // What starts a call on the channel it is given.
  using StartCall = std::function<void(std::shared_ptr<grpc::Channel>)>;
  // Whether a waiting call is no longer wanted (its client left).
  using Abandoned = std::function<bool()>;

  // How often the watcher looks at the channels when no state changes: the
  // longest a waiting call overstays its deadline or its client, and the
  // longest it waits past a READY that raced with its arrival.
  static constexpr absl::Duration kWatchInterval = absl::Milliseconds(200);
  // How long a channel that can be remade may be down (since it was made
  // or last READY) before it is replaced.
  static constexpr absl::Duration kRemakeAfter = absl::Seconds(1);

  // `backends` is not empty. Asks every channel to connect.
  explicit BackendSet(std::vector<BackendChannel> backends);
  // Channels that are never remade.
  explicit BackendSet(std::vector<std::shared_ptr<grpc::Channel>> channels);
  explicit BackendSet(std::shared_ptr<grpc::Channel> channel);
  BackendSet(const BackendSet&) = delete;
  BackendSet& operator=(const BackendSet&) = delete;
  // Starts the calls still waiting, each on the channel Pick() gives (where
  // a channel still down fails it at once, untaken, and the gateway sends
  // it again through the set that replaced this one), then stops the
  // watcher; waits for up to kWatchInterval. Must not run on a thread that
  // StartWhenReady's `start` runs on.
  ~BackendSet();

  size_t size() const { return size_; }

  // Whether calls wait for a READY backend here (StartWhenReady) rather than
  // inside gRPC: with several channels, or one that can be remade. Calls
  // then go to gRPC without wait_for_ready (see Gateway::StartOnBackend).
  bool WaitsForCalls() const { return size_ > 1 || remakes_; }

  // The channel for a call that starts without waiting here: round robin
  // over the READY channels, or over all of them when none is READY. Asks
  // idle channels to connect.
  std::shared_ptr<grpc::Channel> Pick();

  // Whether any channel is READY: a backend can take calls. Asks idle
  // channels to connect.
  bool AnyReady();

  // Calls `start` with the channel a new call should use: at once, on this
  // thread, if the set has one channel never remade, or a READY one;
  // otherwise on the watcher thread as soon as a channel is READY, or, with
  // the channel Pick() then gives, once `deadline` has passed, once
  // `abandoned()` says so (asked at least every kWatchInterval), or on
  // ReleaseWaiting(). The call fails then as gRPC fails it
  // (DEADLINE_EXCEEDED, or CANCELLED for a context already cancelled, or
  // UNAVAILABLE from a channel still down, where WaitsForCalls()).
  void StartWhenReady(absl::Time deadline, Abandoned abandoned,
                      StartCall start);

  // Starts every waiting call now (for shutdown, after their contexts were
  // cancelled, so that they finish at once).
  void ReleaseWaiting();

 private:
  struct Waiting {
    absl::Time deadline;
    Abandoned abandoned;
    StartCall start;
  };

  // The channel of backend `i` now. Reads channels_ without channels_mu_
  // when nothing writes it (no remakes).
  std::shared_ptr<grpc::Channel> ChannelAt(size_t i)
      ABSL_NO_THREAD_SAFETY_ANALYSIS;
  // A READY channel, round robin over the READY ones; null if none is.
  std::shared_ptr<grpc::Channel> PickReady();
  // Starts the waiting calls that may start now (all of them when a
  // channel is READY or `release` is set).
  void StartWaiting(bool release);
  // The watcher thread: keeps one state-change watch per channel on cq_
  // (each ending within kWatchInterval), replaces channels down too long,
  // and starts waiting calls after each.
  void Watch();
  // Watches `channel`, backend `i`'s, from its current state on.
  void Arm(const std::shared_ptr<grpc::Channel>& channel, size_t i);

  const size_t size_;
  // How to remake each backend's channel (null: never remade).
  const std::vector<std::function<std::shared_ptr<grpc::Channel>()>> remake_;
  const std::vector<std::string> targets_;
  // Whether any backend can be remade: only then are channels_ written
  // after construction, and read under channels_mu_.
  const bool remakes_;
  absl::Mutex channels_mu_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_
      ABSL_GUARDED_BY(channels_mu_);
  std::atomic<uint64_t> turn_{0};
  grpc::CompletionQueue cq_;
  absl::Mutex mu_;
  std::vector<Waiting> waiting_ ABSL_GUARDED_BY(mu_);
  // Set by the destructor: no more watches are armed, and a call that
  // would wait starts at once instead.
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Watches on cq_ not yet completed; cq_ is shut down when it reaches 0
  // while stopping_.
  int armed_ ABSL_GUARDED_BY(mu_) = 0;
  // Runs Watch(); only with more than one channel or one that can be
  // remade.
  std::thread watcher_;
};

}  // namespace chat::gateway

#endif  // CHAT_GATEWAY_APP_BACKEND_SET_H_
