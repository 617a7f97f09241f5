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
      "Calls waiting for a backend to be READY (several --backend names, "
      "none READY).");
  return *gauge;
}

}  // namespace

BackendSet::BackendSet(std::vector<std::shared_ptr<grpc::Channel>> channels)
    : channels_(std::move(channels)) {
  if (channels_.empty()) {
    LogError("BackendSet needs at least one channel");
    std::abort();
  }
  // Connects (and starts the health watches) now rather than on the first
  // call, so that call does not wait for the handshake.
  for (const auto& channel : channels_) {
    channel->GetState(/*try_to_connect=*/true);
  }
  WaitingCalls();  // Listed from the start, at 0.
  if (channels_.size() > 1) watcher_ = std::thread([this] { Watch(); });
}

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

std::shared_ptr<grpc::Channel> BackendSet::PickReady() {
  absl::InlinedVector<size_t, 8> ready;
  for (size_t i = 0; i < channels_.size(); ++i) {
    if (channels_[i]->GetState(/*try_to_connect=*/true) == GRPC_CHANNEL_READY) {
      ready.push_back(i);
    }
  }
  if (ready.empty()) return nullptr;
  const uint64_t turn = turn_.fetch_add(1, std::memory_order_relaxed);
  return channels_[ready[turn % ready.size()]];
}

std::shared_ptr<grpc::Channel> BackendSet::Pick() {
  if (channels_.size() == 1) return channels_.front();
  if (std::shared_ptr<grpc::Channel> ready = PickReady()) return ready;
  const uint64_t turn = turn_.fetch_add(1, std::memory_order_relaxed);
  return channels_[turn % channels_.size()];
}

bool BackendSet::AnyReady() {
  bool any = false;
  // Every channel is asked, so that each idle one starts connecting.
  for (const auto& channel : channels_) {
    any =
        channel->GetState(/*try_to_connect=*/true) == GRPC_CHANNEL_READY || any;
  }
  return any;
}

void BackendSet::StartWhenReady(absl::Time deadline, Abandoned abandoned,
                                StartCall start) {
  if (channels_.size() == 1) {
    start(channels_.front());
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

void BackendSet::Arm(size_t i) {
  channels_[i]->NotifyOnStateChange(
      channels_[i]->GetState(/*try_to_connect=*/false),
      absl::ToChronoTime(absl::Now() + kWatchInterval), &cq_, TagOf(i));
}

void BackendSet::Watch() {
  {
    absl::MutexLock lock(&mu_);
    armed_ = static_cast<int>(channels_.size());
  }
  for (size_t i = 0; i < channels_.size(); ++i) Arm(i);
  void* tag = nullptr;
  bool changed = false;  // Whether the state changed or the watch timed out.
  while (cq_.Next(&tag, &changed)) {
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
    if (rearm) Arm(IndexOf(tag));
  }
}

}  // namespace chat::gateway
