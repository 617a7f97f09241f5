#ifndef CHAT_SERVER_LLM_LLM_PROVIDER_H_
#define CHAT_SERVER_LLM_LLM_PROVIDER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace chat::llm {

// One message of the conversation sent upstream.
struct PromptMessage {
  std::string role;  // "user" or "assistant"
  std::string content;
  // The provider's own token count for this message when it is known (an
  // assistant reply's output usage); the context window prefers it to the
  // bytes/4 estimate.
  std::optional<int64_t> tokens;
};

// Everything a provider needs for one completion.
struct CompletionRequest {
  std::string system_prompt;
  // The conversation so far, oldest first, ending with the new user message.
  std::vector<PromptMessage> messages;
  // Empty: the provider's configured default.
  std::string model;
  std::optional<int> max_tokens;
  std::optional<double> temperature;
  // Sequences that end the reply where the model would write them (not
  // included in it); empty: none. OpenAI's `stop`, Anthropic's
  // `stop_sequences`.
  std::vector<std::string> stop;
  // The end user the call is made for, passed on for the provider's abuse
  // monitoring (OpenAI's `user`, Anthropic's `metadata.user_id`); empty:
  // none.
  std::string user;
  // The caller's deadline (its gRPC deadline): the completion fails with
  // kDeadlineExceeded rather than run past it, retries included.
  absl::Time deadline = absl::InfiniteFuture();
  // The W3C traceparent to send upstream (its parent id this call's span);
  // empty: none is sent.
  std::string traceparent;
  // False: an HTTP provider asks for the reply as one JSON document rather
  // than a stream of events, and hands it to the sink as one delta once it
  // is whole (the echo provider streams either way): one message rather
  // than one per token, for a short reply nobody watches arrive (a
  // session's title). A long reply should stream: without streaming, nothing
  // arrives before the whole reply is written, so the provider's first-byte
  // timeout then bounds the whole generation.
  bool stream = true;
};

// How a completion ended.
struct CompletionResult {
  std::string model;
  std::string stop_reason;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  // For the logs: the provider that answered ("anthropic", "openai",
  // "echo"), its id for the request (a response header), and how many
  // attempts failed before this one.
  std::string provider;
  std::string provider_request_id;
  int retries = 0;
};

// Receives one completion's output. The provider calls OnDelta zero or more
// times, then OnComplete exactly once; calls for one completion never
// overlap. They may come from any thread, so implementations must not block
// (hand blocking work to a pool).
class CompletionSink {
 public:
  virtual ~CompletionSink() = default;
  // The next piece of the reply.
  virtual void OnDelta(absl::string_view text) = 0;
  // The end: the usage and stop reason, or why it failed (kCancelled after
  // Cancel()).
  virtual void OnComplete(absl::StatusOr<CompletionResult> result) = 0;
};

// Stops a running completion.
class CompletionCall {
 public:
  virtual ~CompletionCall() = default;
  // Asks the provider to stop as soon as it can. The sink still receives its
  // OnComplete (kCancelled, unless the completion had already ended). Safe
  // to call from any thread, more than once, and after completion.
  virtual void Cancel() = 0;
};

// A source of completions (Anthropic, OpenAI-compatible, offline echo).
// Asynchronous: Start returns at once and no thread waits per call.
// Thread-safe.
class LlmProvider {
 public:
  LlmProvider() = default;
  LlmProvider(const LlmProvider&) = delete;
  LlmProvider& operator=(const LlmProvider&) = delete;
  virtual ~LlmProvider() = default;

  // Starts a completion. The provider keeps `sink` alive until it has called
  // OnComplete. Never calls the sink from inside Start.
  virtual std::shared_ptr<CompletionCall> Start(
      CompletionRequest request, std::shared_ptr<CompletionSink> sink) = 0;

  // The provider's name for logs ("echo", "anthropic", ...).
  virtual absl::string_view name() const = 0;
};

}  // namespace chat::llm

#endif  // CHAT_SERVER_LLM_LLM_PROVIDER_H_
