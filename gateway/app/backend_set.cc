#include "gateway/app/backend_set.h"

#include <cstdint>
#include <cstdlib>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/metrics.h"

namespace chat::gateway {
namespace {

void* TagOf(size_t i) {
  return reinterpret_cast<void*>(static_cast<uintptr_t>(i));
}
size_t IndexOf(void* tag) {
  return static_cast<size_t>(reinterpret_cast<uintptr_t>(tag));
}

// Calls of every set waiting for a READY backend: above zero only while no
// backend of a multi-name --backend is READY.
Gauge& WaitingCalls() {
  static Gauge* gauge = &MetricsRegistry::Default().AddGauge(
      "chatd_gateway_backend_waiting_calls",
      "Calls waiting for a backend to be READY (--backend names a host, "
      "none READY).");
  return *gauge;
}

// Backend channels replaced because they stayed down: about one a second
// per named backend while it is down.
Counter& RemadeChannels() {
  static Counter* counter = &MetricsRegistry::Default().AddCounter(
      "chatd_gateway_backend_channels_remade_total",
      "Backend channels to a DNS name replaced by a fresh one (which looks "
      "the name up at once) after being down for a second.");
  return *counter;
}

std::vector<std::shared_ptr<grpc::Channel>> ChannelsOf(
    const std::vector<BackendChannel>& backends) {
  std::vector<std::shared_ptr<grpc::Channel>> out;
  for (const BackendChannel& b : backends) out.push_back(b.channel);
  return out;
}

std::vector<std::function<std::shared_ptr<grpc::Channel>()>> RemakesOf(
    const std::vector<BackendChannel>& backends) {
  std::vector<std::function<std::shared_ptr<grpc::Channel>()>> out;
  for (const BackendChannel& b : backends) out.push_back(b.remake);
  return out;
}

std::vector<std::string> TargetsOf(
    const std::vector<BackendChannel>& backends) {
  std::vector<std::string> out;
  for (const BackendChannel& b : backends) out.push_back(b.target);
  return out;
}

bool AnyRemake(const std::vector<BackendChannel>& backends) {
  for (const BackendChannel& b : backends) {
    if (b.remake != nullptr) return true;
  }
  return false;
}

std::vector<BackendChannel> Fixed(
    std::vector<std::shared_ptr<grpc::Channel>> channels) {
  std::vector<BackendChannel> out;
  for (auto& c : channels) out.push_back(BackendChannel{"", std::move(c), {}});
  return out;
}

}  // namespace

BackendSet::BackendSet(std::vector<BackendChannel> backends)
    : size_(backends.size()),
      remake_(RemakesOf(backends)),
      targets_(TargetsOf(backends)),
      remakes_(AnyRemake(backends)),
      channels_(ChannelsOf(backends)) {
  if (size_ == 0) {
    LogError("BackendSet needs at least one channel");
    std::abort();
  }
  // Connects (and starts the health watches) now rather than on the first
  // call, so that call does not wait for the handshake.
  for (const BackendChannel& backend : backends) {
    if (backend.connects) backend.channel->GetState(/*try_to_connect=*/true);
  }
  WaitingCalls();  // Listed from the start, at 0.
  RemadeChannels();
  if (size_ > 1 || remakes_) watcher_ = std::thread([this] { Watch(); });
}

BackendSet::BackendSet(std::vector<std::shared_ptr<grpc::Channel>> channels)
    : BackendSet(Fixed(std::move(channels))) {}

BackendSet::BackendSet(std::shared_ptr<grpc::Channel> channel)
    : BackendSet(
          std::vector<std::shared_ptr<grpc::Channel>>{std::move(channel)}) {}

BackendSet::~BackendSet() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  StartWaiting(/*release=*/true);
  if (watcher_.joinable()) watcher_.join();
}

// Without remakes channels_ never changes after the constructor, and the
// calls' path reads it without a lock, as before channels could be remade.
std::shared_ptr<grpc::Channel> BackendSet::ChannelAt(size_t i) {
  if (!remakes_) return channels_[i];
  absl::ReaderMutexLock lock(&channels_mu_);
  return channels_[i];
}

std::shared_ptr<grpc::Channel> BackendSet::PickReady() {
  absl::InlinedVector<std::shared_ptr<grpc::Channel>, 8> ready;
  for (size_t i = 0; i < size_; ++i) {
    std::shared_ptr<grpc::Channel> channel = ChannelAt(i);
    if (channel->GetState(/*try_to_connect=*/true) == GRPC_CHANNEL_READY) {
      ready.push_back(std::move(channel));
    }
  }
  if (ready.empty()) return nullptr;
  if (ready.size() == 1) return std::move(ready.front());
  const uint64_t turn = turn_.fetch_add(1, std::memory_order_relaxed);
  return std::move(ready[turn % ready.size()]);
}

std::shared_ptr<grpc::Channel> BackendSet::Pick() {
  if (size_ == 1) return ChannelAt(0);
  if (std::shared_ptr<grpc::Channel> ready = PickReady()) return ready;
  const uint64_t turn = turn_.fetch_add(1, std::memory_order_relaxed);
  return ChannelAt(turn % size_);
}

bool BackendSet::AnyReady() {
  bool any = false;
  // Every channel is asked, so that each idle one starts connecting.
  for (size_t i = 0; i < size_; ++i) {
    any =
        ChannelAt(i)->GetState(/*try_to_connect=*/true) == GRPC_CHANNEL_READY ||
        any;
  }
  return any;
}

void BackendSet::StartWhenReady(absl::Time deadline, Abandoned abandoned,
                                StartCall start) {
  if (size_ == 1 && !remakes_) {
    start(ChannelAt(0));
    return;
  }
  if (std::shared_ptr<grpc::Channel> ready = PickReady()) {
    start(std::move(ready));
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      waiting_.push_back(
          Waiting{deadline, std::move(abandoned), std::move(start)});
      start = nullptr;
      WaitingCalls().Increment();
    }
  }
  if (start != nullptr) {
    start(Pick());
    return;
  }
  // A channel that turned READY between PickReady and the push above may
  // have been seen by the watcher before this call was waiting.
  StartWaiting(/*release=*/false);
}

void BackendSet::ReleaseWaiting() { StartWaiting(/*release=*/true); }

void BackendSet::StartWaiting(bool release) {
  std::vector<Waiting> now;
  {
    absl::MutexLock lock(&mu_);
    if (waiting_.empty()) return;
  }
  // Outside mu_: asking a channel's state takes gRPC's locks.
  const bool ready = release || AnyReady();
  {
    absl::MutexLock lock(&mu_);
    if (ready) {
      now.swap(waiting_);
    } else {
      const absl::Time time = absl::Now();
      std::vector<Waiting> still;
      for (Waiting& w : waiting_) {
        if (w.deadline <= time || (w.abandoned && w.abandoned())) {
          now.push_back(std::move(w));
        } else {
          still.push_back(std::move(w));
        }
      }
      waiting_.swap(still);
    }
    WaitingCalls().Decrement(static_cast<double>(now.size()));
  }
  // Outside mu_: a start may come back here (StartWhenReady, for the next
  // page of a list).
  for (Waiting& w : now) w.start(Pick());
}

void BackendSet::Arm(const std::shared_ptr<grpc::Channel>& channel, size_t i) {
  channel->NotifyOnStateChange(channel->GetState(/*try_to_connect=*/false),
                               absl::ToChronoTime(absl::Now() + kWatchInterval),
                               &cq_, TagOf(i));
}

void BackendSet::Watch() {
  {
    absl::MutexLock lock(&mu_);
    armed_ = static_cast<int>(size_);
  }
  // Per backend, only on this thread: the channel its watch is on (kept
  // alive until the watch ends, even once replaced), since when it has not
  // been READY (InfiniteFuture while it is; a fresh channel's creation),
  // and whether this outage was logged.
  std::vector<std::shared_ptr<grpc::Channel>> watched(size_);
  std::vector<absl::Time> down_since(size_, absl::InfiniteFuture());
  std::vector<bool> logged(size_, false);
  for (size_t i = 0; i < size_; ++i) {
    watched[i] = ChannelAt(i);
    Arm(watched[i], i);
  }
  void* tag = nullptr;
  bool changed = false;  // Whether the state changed or the watch timed out.
  while (cq_.Next(&tag, &changed)) {
    const size_t i = IndexOf(tag);
    if (remake_[i] != nullptr) {
      const absl::Time now = absl::Now();
      std::shared_ptr<grpc::Channel> channel = ChannelAt(i);
      if (channel->GetState(/*try_to_connect=*/false) == GRPC_CHANNEL_READY) {
        down_since[i] = absl::InfiniteFuture();
        logged[i] = false;
      } else if (down_since[i] == absl::InfiniteFuture()) {
        down_since[i] = now;
      } else if (now - down_since[i] >= kRemakeAfter) {
        if (!logged[i]) {
          LogWarning("backend ", targets_[i], " not ready for ",
                     absl::FormatDuration(now - down_since[i]),
                     ": making a fresh channel (a new DNS lookup) every ",
                     absl::FormatDuration(kRemakeAfter), " until it is");
          logged[i] = true;
        }
        std::shared_ptr<grpc::Channel> fresh = remake_[i]();
        fresh->GetState(/*try_to_connect=*/true);
        {
          absl::MutexLock lock(&channels_mu_);
          channels_[i].swap(fresh);
        }
        // The old channel goes with the last call on it; not under the
        // lock, where its destruction would hold up the calls' reads.
        fresh.reset();
        down_since[i] = now;
        RemadeChannels().Increment();
      }
    }
    StartWaiting(/*release=*/false);
    bool rearm = false;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) {
        if (--armed_ == 0) cq_.Shutdown();
      } else {
        rearm = true;
      }
    }
    if (rearm) {
      watched[i] = ChannelAt(i);
      Arm(watched[i], i);
    }
  }
}

}  // namespace chat::gateway
