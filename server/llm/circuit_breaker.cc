#include "server/llm/circuit_breaker.h"

#include <utility>

namespace chat::llm {

CircuitBreaker::CircuitBreaker(CircuitBreakerOptions options)
    : options_(std::move(options)) {}

CircuitBreaker::Admission CircuitBreaker::TryAdmit() {
  absl::MutexLock lock(&mu_);
  if (open_until_ == absl::InfinitePast()) return Admission::kClosed;
  if (options_.now() < open_until_ || probe_in_flight_) {
    return Admission::kRefused;
  }
  probe_in_flight_ = true;
  return Admission::kProbe;
}

CircuitBreaker::Admission CircuitBreaker::Force() {
  Admission admission = TryAdmit();
  return admission == Admission::kRefused ? Admission::kForced : admission;
}

void CircuitBreaker::Record(Admission admission, Outcome outcome) {
  absl::MutexLock lock(&mu_);
  if (admission == Admission::kProbe) probe_in_flight_ = false;
  switch (outcome) {
    case Outcome::kSuccess:
      // Any answer proves the provider is back, a forced call's included.
      consecutive_failures_ = 0;
      open_until_ = absl::InfinitePast();
      return;
    case Outcome::kNeutral:
      return;
    case Outcome::kFailure:
      break;
  }
  switch (admission) {
    case Admission::kClosed:
      // Calls admitted before another opened the breaker do not extend
      // its cooldown.
      if (open_until_ != absl::InfinitePast()) return;
      if (++consecutive_failures_ >= options_.failure_threshold) {
        open_until_ = options_.now() + options_.cooldown;
      }
      return;
    case Admission::kProbe:
      open_until_ = options_.now() + options_.cooldown;
      return;
    case Admission::kForced:
    case Admission::kRefused:
      // A forced call failing tells nothing the open breaker did not know;
      // extending the cooldown would keep its probe away for ever while
      // every entry is down.
      return;
  }
}

bool CircuitBreaker::IsOpen() {
  absl::MutexLock lock(&mu_);
  return open_until_ != absl::InfinitePast() && options_.now() < open_until_;
}

}  // namespace chat::llm
