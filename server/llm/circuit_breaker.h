#ifndef CHAT_SERVER_LLM_CIRCUIT_BREAKER_H_
#define CHAT_SERVER_LLM_CIRCUIT_BREAKER_H_

#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace chat::llm {

struct CircuitBreakerOptions {
  // Consecutive retryable failures that open the breaker.
  int failure_threshold = 3;
  // How long an open breaker turns calls away before it lets one probe
  // through.
  absl::Duration cooldown = absl::Seconds(30);
  // The clock; tests pass a fake one.
  std::function<absl::Time()> now = [] { return absl::Now(); };
};

// The health of one provider entry, as Envoy's outlier detection and
// LiteLLM's cooldowns keep it: closed (calls go through) until
// `failure_threshold` consecutive retryable failures open it; open, it turns
// calls away for `cooldown`; then half-open, it lets exactly one call through
// as a probe, whose success closes it and whose failure opens it for another
// cooldown. Thread-safe.
class CircuitBreaker {
 public:
  // How a call was let through; pass it back to Record().
  enum class Admission {
    kRefused,  // Open, or half-open with its probe in flight: skip the entry.
    kClosed,   // The normal case.
    kProbe,    // The one call let through after the cooldown.
    kForced,   // Let through by Force() although refused (nothing else left).
  };
  // How the call went, as far as the provider's health goes.
  enum class Outcome {
    kSuccess,  // It answered (a first delta, or a complete reply).
    kFailure,  // A retryable failure before any output (5xx, 529, 429...).
    kNeutral,  // Says nothing about health (cancelled, bad request).
  };

  explicit CircuitBreaker(CircuitBreakerOptions options);
  CircuitBreaker(const CircuitBreaker&) = delete;
  CircuitBreaker& operator=(const CircuitBreaker&) = delete;

  // Whether a call may go to this entry now. A kProbe admission must be
  // followed by exactly one Record().
  Admission TryAdmit();
  // Admits a call whatever the state (kForced unless TryAdmit would have
  // admitted it anyway): used when every entry refuses.
  Admission Force();
  // Reports how an admitted call went.
  void Record(Admission admission, Outcome outcome);

  // For tests and logs: open (cooldown running) right now.
  bool IsOpen();

 private:
  const CircuitBreakerOptions options_;
  absl::Mutex mu_;
  int consecutive_failures_ ABSL_GUARDED_BY(mu_) = 0;
  // InfinitePast while closed; when open, the end of the cooldown (after it,
  // half-open).
  absl::Time open_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool probe_in_flight_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace chat::llm

#endif  // CHAT_SERVER_LLM_CIRCUIT_BREAKER_H_
