#ifndef CHAT_SERVER_LLM_HTTP_STREAMING_PROVIDER_H_
#define CHAT_SERVER_LLM_HTTP_STREAMING_PROVIDER_H_

#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/metrics.h"
#include "server/llm/curl_multi_loop.h"
#include "server/llm/llm_provider.h"
#include "server/llm/sse_parser.h"

namespace chat::llm {

// Decodes one response of one completion. Not thread-safe (each call has
// its own, used on the I/O thread).
class StreamDecoder {
 public:
  virtual ~StreamDecoder() = default;
  // Decodes one SSE event of a 200 response, appending any text to
  // `deltas`. An error event returns its Status (mapped with
  // MapProviderHttpError); malformed JSON is kInternal.
  virtual absl::Status OnEvent(const SseEvent& event,
                               std::vector<std::string>* deltas) = 0;
  // Decodes a whole (non-streamed) JSON response body.
  virtual absl::Status OnWholeBody(absl::string_view body,
                                   std::vector<std::string>* deltas) = 0;
  // True once the event that ends the reply (message_stop, [DONE]) was
  // decoded: the caller is answered then, without waiting for the server to
  // end the body.
  virtual bool done() const = 0;
  // The result, or kUnavailable if the stream stopped before the event that
  // ends it.
  virtual absl::StatusOr<CompletionResult> Finish() = 0;
};

// What makes one HTTP+SSE completion API different from another: the request
// it sends and how it reads the answer. Thread-safe (const).
class WireProtocol {
 public:
  virtual ~WireProtocol() = default;
  // "anthropic", "openai": used in logs and error messages.
  virtual absl::string_view name() const = 0;
  // The URL, headers (credentials included) and JSON body for `request`.
  // Timeouts and deadline are filled in by the caller.
  virtual HttpRequest BuildRequest(const CompletionRequest& request) const = 0;
  virtual std::unique_ptr<StreamDecoder> NewDecoder() const = 0;
  // The response header naming the upstream request, logged on errors.
  virtual absl::string_view request_id_header() const = 0;
};

struct HttpProviderOptions {
  // Retries of a failure that happened before any text reached the caller.
  int max_retries = 2;
  absl::Duration connect_timeout = absl::Seconds(10);
  absl::Duration first_byte_timeout = absl::Seconds(60);
  absl::Duration idle_timeout = absl::Seconds(60);
  // Backoff before retry n is base * 2^(n-1), capped, times a jitter in
  // [0.5, 1), and never less than the server's retry-after.
  absl::Duration retry_base_delay = absl::Milliseconds(500);
  absl::Duration retry_max_delay = absl::Seconds(20);
  // CAs to trust for the provider's TLS certificate (a private CA in front
  // of a self-hosted server); empty: the system's.
  std::string ca_file;
};

// The wait before retry `retry` (1-based), given `jitter` in [0, 1) and the
// server's `retry_after`, if any. Pure, for tests.
absl::Duration RetryDelay(int retry, const HttpProviderOptions& options,
                          double jitter,
                          std::optional<absl::Duration> retry_after);

// The server's requested wait, from "retry-after-ms" (OpenAI) or
// "retry-after" in seconds (an HTTP-date is ignored). Headers lowercased.
std::optional<absl::Duration> ParseRetryAfter(
    const std::map<std::string, std::string>& headers);

// Reads an error body ({"error": {"type", "message"}} in both Anthropic's and
// OpenAI's formats, {"error": "text"} from some local servers) into the
// error's type (or code) and message; leaves them empty if it cannot.
void ParseErrorBody(absl::string_view body, std::string* type,
                    std::string* message);

// An LlmProvider speaking `protocol` over HTTP, with every transfer on one
// CurlMultiLoop. Each completion is a small state machine living on the I/O
// thread: attempt, stream, maybe wait (a timer, no thread) and retry, end.
// Thread-safe.
class HttpStreamingProvider final : public LlmProvider {
 public:
  HttpStreamingProvider(std::unique_ptr<WireProtocol> protocol,
                        HttpProviderOptions options,
                        std::unique_ptr<CurlMultiLoop> loop);
  // Every completion must have ended (the engine waits for its turns first).
  ~HttpStreamingProvider() override;

  std::shared_ptr<CompletionCall> Start(
      CompletionRequest request, std::shared_ptr<CompletionSink> sink) override;
  absl::string_view name() const override { return protocol_->name(); }

 private:
  class Call;

  const std::unique_ptr<WireProtocol> protocol_;
  const HttpProviderOptions options_;
  const std::unique_ptr<CurlMultiLoop> loop_;
  std::mt19937 random_;  // I/O thread only.
  // The metric children of a successful attempt, looked up on the first
  // (I/O thread only): the lookup builds the label strings and locks.
  Counter* ok_requests_ = nullptr;
  Histogram* duration_ = nullptr;
};

}  // namespace chat::llm

#endif  // CHAT_SERVER_LLM_HTTP_STREAMING_PROVIDER_H_
