#ifndef CHAT_SERVER_LLM_FALLBACK_PROVIDER_H_
#define CHAT_SERVER_LLM_FALLBACK_PROVIDER_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/llm/circuit_breaker.h"
#include "server/llm/llm_provider.h"

namespace chat::llm {

// One provider of the ordered list FallbackProvider tries.
struct FallbackEntry {
  std::unique_ptr<LlmProvider> provider;
  // The model this entry asks for, replacing the request's (a fallback's
  // model belongs to its provider). Empty (the primary): the request's own.
  std::string model;
};

// Whether `status`, a completion's failure before its first delta, is worth
// trying the next provider for: the provider is down or overloaded
// (kUnavailable: connection refused, 5xx, 529) or out of capacity
// (kResourceExhausted: 429 after its own retries). Not for the caller's own
// mistakes (kInvalidArgument), a bad key (kInternal, kPermissionDenied,
// kUnauthenticated), cancellation or the deadline: another provider would
// fail the same way, or the caller no longer waits.
bool ShouldFallBack(const absl::Status& status);

// An LlmProvider over an ordered list: the primary first, then the
// fallbacks. A call goes to the first entry whose circuit breaker admits it;
// when that attempt fails before its first delta with a ShouldFallBack
// failure, the next admitted entry is started from the failed attempt's
// final callback (no thread waits per call). A failure after the first delta
// goes to the caller, who has already seen text. If every breaker refuses,
// the primary is tried anyway: a call never fails without trying something.
// Each entry has its own breaker (see CircuitBreaker). Thread-safe.
class FallbackProvider final : public LlmProvider {
 public:
  // `entries[0]` is the primary; at least one entry.
  FallbackProvider(std::vector<FallbackEntry> entries,
                   CircuitBreakerOptions breaker);
  ~FallbackProvider() override;

  std::shared_ptr<CompletionCall> Start(
      CompletionRequest request, std::shared_ptr<CompletionSink> sink) override;

  // The primary's name.
  absl::string_view name() const override;

  // For tests: whether entry `i`'s breaker is open (in its cooldown).
  bool IsCoolingDown(size_t i);

 private:
  class Call;
  class AttemptSink;

  struct Entry {
    Entry(FallbackEntry e, const CircuitBreakerOptions& options)
        : provider(std::move(e.provider)),
          name(provider->name()),
          model(std::move(e.model)),
          breaker(options) {}
    // Reset in the destructor, before the vector goes.
    std::unique_ptr<LlmProvider> provider;
    // provider->name(), kept for the final callbacks that come while the
    // provider is being destroyed.
    const std::string name;
    std::string model;
    CircuitBreaker breaker;
  };

  std::vector<std::unique_ptr<Entry>> entries_;
  // Set first in the destructor: a failure then (the inner providers
  // cancelling their calls) is passed on, never retried elsewhere.
  std::atomic<bool> shutting_down_{false};
};

}  // namespace chat::llm

#endif  // CHAT_SERVER_LLM_FALLBACK_PROVIDER_H_
