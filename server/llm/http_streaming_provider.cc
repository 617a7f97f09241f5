#include "server/llm/http_streaming_provider.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/trace_context.h"
#include "server/llm/provider_error.h"
#include "server/llm/provider_metrics.h"

namespace chat::llm {
namespace {

// Bounds on what one response may make us hold.
constexpr size_t kMaxErrorBodyBytes = 64 * 1024;
// Both in whole MiB: their errors say the limit in MiB.
constexpr size_t kMaxWholeBodyBytes = 16 * 1024 * 1024;
constexpr size_t kMaxPendingEventBytes = 16 * 1024 * 1024;
static_assert(kMaxWholeBodyBytes % (1 << 20) == 0 &&
              kMaxPendingEventBytes % (1 << 20) == 0);

// The trace id of a traceparent the engine built ("00-<id>-<span>-<flags>").
std::string TraceIdOf(absl::string_view traceparent) {
  std::optional<TraceContext> context = ParseTraceparent(traceparent);
  return context.has_value() ? context->trace_id : std::string();
}

}  // namespace

absl::Duration RetryDelay(int retry, const HttpProviderOptions& options,
                          double jitter,
                          std::optional<absl::Duration> retry_after) {
  absl::Duration backoff = options.retry_base_delay;
  for (int i = 1; i < retry && backoff < options.retry_max_delay; ++i)
    backoff *= 2;
  backoff = std::min(backoff, options.retry_max_delay);
  // "Equal jitter": at least half the backoff, so retries of many clients
  // spread out without collapsing to zero.
  absl::Duration delay = backoff * (0.5 + 0.5 * std::clamp(jitter, 0.0, 1.0));
  if (retry_after.has_value()) delay = std::max(delay, *retry_after);
  return delay;
}

std::optional<absl::Duration> ParseRetryAfter(
    const std::map<std::string, std::string>& headers) {
  double value = 0;
  if (auto it = headers.find("retry-after-ms");
      it != headers.end() && absl::SimpleAtod(it->second, &value) &&
      value >= 0) {
    return absl::Milliseconds(value);
  }
  if (auto it = headers.find("retry-after");
      it != headers.end() && absl::SimpleAtod(it->second, &value) &&
      value >= 0) {
    return absl::Seconds(value);
  }
  return std::nullopt;
}

void ParseErrorBody(absl::string_view body, std::string* type,
                    std::string* message) {
  nlohmann::json json = nlohmann::json::parse(body, nullptr, false);
  if (json.is_discarded() || !json.is_object()) return;
  auto error = json.find("error");
  if (error == json.end()) return;
  if (error->is_string()) {
    *message = error->get<std::string>();
    return;
  }
  if (!error->is_object()) return;
  if (auto t = error->find("type"); t != error->end() && t->is_string()) {
    *type = t->get<std::string>();
  }
  // OpenAI's code ("rate_limit_exceeded", "invalid_api_key") says more than
  // its generic type.
  if (auto c = error->find("code"); c != error->end() && c->is_string()) {
    *type = c->get<std::string>();
  }
  if (auto m = error->find("message"); m != error->end() && m->is_string()) {
    *message = m->get<std::string>();
  }
}

// One completion. Everything but the constructor, Begin and Cancel runs on
// the loop's I/O thread, so the state needs no lock. It keeps itself alive
// through the loop's closures and its transfer's handler reference.
class HttpStreamingProvider::Call final
    : public CompletionCall,
      public TransferHandler,
      public std::enable_shared_from_this<Call> {
 public:
  Call(HttpStreamingProvider* provider, CompletionRequest request,
       std::shared_ptr<CompletionSink> sink)
      : provider_(provider),
        deadline_(request.deadline),
        sink_(std::move(sink)) {
    http_request_ = provider_->protocol_->BuildRequest(request);
    http_request_.connect_timeout = provider_->options_.connect_timeout;
    http_request_.first_byte_timeout = provider_->options_.first_byte_timeout;
    http_request_.idle_timeout = provider_->options_.idle_timeout;
    http_request_.deadline = deadline_;
    http_request_.ca_file = provider_->options_.ca_file;
    if (!request.traceparent.empty()) {
      http_request_.headers.push_back(
          absl::StrCat("traceparent: ", request.traceparent));
    }
    trace_id_ = TraceIdOf(request.traceparent);
  }

  void Begin() {
    provider_->loop_->Post(
        [self = shared_from_this()] { self->StartAttempt(); });
  }

  void Cancel() override {
    provider_->loop_->Post([self = shared_from_this()] {
      self->cancelled_ = true;
      if (self->sink_ == nullptr) return;  // Already ended.
      if (self->transfer_active_) {
        // Closes the connection now: the provider stops generating.
        self->provider_->loop_->AbortTransfer(self->transfer_id_);
        self->transfer_active_ = false;
      }
      self->End(absl::CancelledError("the completion was cancelled"));
    });
  }

  // TransferHandler
  void OnResponse(int http_status,
                  const std::map<std::string, std::string>& headers) override {
    http_status_ = http_status;
    if (auto it = headers.find(
            std::string(provider_->protocol_->request_id_header()));
        it != headers.end()) {
      request_id_ = it->second;
    }
    retry_after_ = ParseRetryAfter(headers);
    auto type = headers.find("content-type");
    // Streaming unless the server plainly says it sent one JSON document.
    whole_body_mode_ = type != headers.end() &&
                       absl::StrContains(type->second, "application/json");
  }

  bool OnBody(absl::string_view bytes) override {
    // Already answered (the end event came): drain what is left so the
    // connection can be reused; but a cancelled call's transfer must stop.
    if (sink_ == nullptr) return !cancelled_;
    if (http_status_ < 200 || http_status_ > 299 || whole_body_mode_) {
      const bool answer = http_status_ / 100 == 2;
      const size_t limit = answer ? kMaxWholeBodyBytes : kMaxErrorBodyBytes;
      // An error body is read as far as the limit (its message comes
      // first), but an answer cut short would fail later as "not JSON".
      if (answer && bytes.size() > limit - body_.size()) {
        stream_error_ = absl::InternalError(absl::StrCat(
            provider_->protocol_->name(), " sent a response larger than ",
            kMaxWholeBodyBytes >> 20, " MiB"));
        return false;
      }
      body_.append(
          bytes.data(),
          std::min(bytes.size(), limit - std::min(limit, body_.size())));
      return true;
    }
    // The deltas of every event in these bytes go to the sink as one: each
    // OnDelta is a write down the caller's stream (a lock, a gRPC message, a
    // hand-off to another thread), and events that arrived together gain
    // nothing from going out apart.
    const bool go_on = parser_.FeedEach(bytes, [this](const SseEvent& event) {
      absl::Status s = decoder_->OnEvent(event, &deltas_);
      if (!s.ok()) {
        stream_error_ = s;
        return false;
      }
      return true;
    });
    Emit(&deltas_);
    if (!go_on) return false;
    if (decoder_->done()) {
      RecordAttempt(http_status_);
      End(decoder_->Finish());
      return true;
    }
    if (parser_.buffered_bytes() > kMaxPendingEventBytes) {
      stream_error_ = absl::InternalError(absl::StrCat(
          provider_->protocol_->name(), " sent an event larger than ",
          kMaxPendingEventBytes >> 20, " MiB"));
      return false;
    }
    return true;
  }

  void OnDone(const TransferOutcome& outcome) override {
    transfer_active_ = false;
    if (!cancelled_) {
      RecordAttempt(outcome.curl_code == CURLE_OK ? http_status_ : 0);
    }
    if (sink_ == nullptr) return;
    absl::string_view name = provider_->protocol_->name();
    bool retryable = false;
    absl::Status failure;
    if (outcome.aborted_by_handler && !stream_error_.ok()) {
      failure = stream_error_;
      retryable =
          absl::IsUnavailable(failure) || absl::IsResourceExhausted(failure);
    } else if (outcome.curl_code != CURLE_OK) {
      TransportFailure transport;
      transport.code = outcome.curl_code;
      transport.message = outcome.error;
      transport.got_response = outcome.got_response;
      transport.stalled = outcome.stalled;
      transport.deadline_passed = absl::Now() >= deadline_;
      failure = MapTransportError(name, transport);
      retryable = IsRetryableTransportFailure(transport);
    } else if (http_status_ < 200 || http_status_ > 299) {
      std::string type, message;
      ParseErrorBody(body_, &type, &message);
      failure = MapProviderHttpError(name, http_status_, type, message);
      retryable = IsRetryableHttpStatus(http_status_);
    } else {
      std::vector<std::string> deltas;
      absl::Status s = whole_body_mode_ ? decoder_->OnWholeBody(body_, &deltas)
                                        : absl::OkStatus();
      Emit(&deltas);
      absl::StatusOr<CompletionResult> result =
          s.ok() ? decoder_->Finish() : absl::StatusOr<CompletionResult>(s);
      if (result.ok()) {
        End(std::move(result));
        return;
      }
      failure = result.status();
      retryable = absl::IsUnavailable(failure);
    }
    Log(LogSeverity::kWarning,
        absl::StrCat(name, " attempt ", attempts_,
                     " failed: ", failure.message()),
        LogFields()
            .Add("trace_id", trace_id_)
            .Add("provider", name)
            .Add("provider_request_id", request_id_)
            .Add("http_status", http_status_));
    // Nothing is retried once text reached the caller: it would see the
    // reply twice.
    if (retryable && !emitted_ &&
        attempts_ <= provider_->options_.max_retries) {
      absl::Duration delay = RetryDelay(
          attempts_, provider_->options_,
          std::uniform_real_distribution<double>(0.0, 1.0)(provider_->random_),
          retry_after_);
      if (absl::Now() + delay < deadline_) {
        Log(LogSeverity::kInfo,
            absl::StrCat(name, ": retrying in ", absl::FormatDuration(delay)),
            LogFields().Add("trace_id", trace_id_));
        ProviderMetrics::Get().retries.WithLabels({name}).Increment();
        provider_->loop_->RunAt(
            absl::Now() + delay,
            [self = shared_from_this()] { self->StartAttempt(); });
        return;
      }
    }
    End(failure);
  }

 private:
  void StartAttempt() {
    if (sink_ == nullptr) return;  // Cancelled while waiting to retry.
    if (absl::Now() >= deadline_) {
      End(absl::DeadlineExceededError(absl::StrCat(
          provider_->protocol_->name(), " call reached its deadline")));
      return;
    }
    ++attempts_;
    attempt_started_ = absl::Now();
    attempt_recorded_ = false;
    http_status_ = 0;
    whole_body_mode_ = false;
    retry_after_.reset();
    request_id_.clear();
    body_.clear();
    stream_error_ = absl::OkStatus();
    parser_ = SseParser();
    decoder_ = provider_->protocol_->NewDecoder();
    transfer_active_ = true;
    transfer_id_ =
        provider_->loop_->StartTransfer(http_request_, shared_from_this());
  }

  // Counts this attempt once, by `http_status` (0: no response).
  void RecordAttempt(int http_status) {
    if (attempt_recorded_) return;
    attempt_recorded_ = true;
    absl::string_view name = provider_->protocol_->name();
    ProviderMetrics& metrics = ProviderMetrics::Get();
    if (http_status == 200) {
      if (provider_->ok_requests_ == nullptr) {
        provider_->ok_requests_ =
            &metrics.requests.WithLabels({name, ProviderStatusLabel(200)});
      }
      provider_->ok_requests_->Increment();
    } else {
      metrics.requests.WithLabels({name, ProviderStatusLabel(http_status)})
          .Increment();
    }
    if (provider_->duration_ == nullptr) {
      provider_->duration_ = &metrics.duration.WithLabels({name});
    }
    provider_->duration_->Observe(
        absl::ToDoubleSeconds(absl::Now() - attempt_started_));
  }

  // Sends the non-empty `deltas` to the sink as one delta, and clears them.
  void Emit(std::vector<std::string>* deltas) {
    const std::string* only = nullptr;
    size_t non_empty = 0;
    for (const std::string& d : *deltas) {
      if (d.empty()) continue;
      only = &d;
      ++non_empty;
    }
    if (non_empty == 1) {
      emitted_ = true;
      sink_->OnDelta(*only);
    } else if (non_empty > 1) {
      joined_.clear();
      for (const std::string& d : *deltas) joined_.append(d);
      emitted_ = true;
      sink_->OnDelta(joined_);
    }
    deltas->clear();
  }

  void End(absl::StatusOr<CompletionResult> result) {
    if (result.ok()) {
      result->provider = std::string(provider_->protocol_->name());
      result->provider_request_id = request_id_;
      result->retries = std::max(0, attempts_ - 1);
    }
    std::shared_ptr<CompletionSink> sink = std::move(sink_);
    sink->OnComplete(std::move(result));
  }

  HttpStreamingProvider* const provider_;
  const absl::Time deadline_;
  // For log lines about this call; empty without a traceparent.
  std::string trace_id_;
  HttpRequest http_request_;
  // Null once OnComplete was called.
  std::shared_ptr<CompletionSink> sink_;

  int attempts_ = 0;
  bool emitted_ = false;  // A delta reached the sink: no more retries.
  bool transfer_active_ = false;
  // Cancel() ran: a transfer still delivering bytes is stopped, not drained.
  bool cancelled_ = false;
  CurlMultiLoop::TransferId transfer_id_ = 0;
  // The current attempt's response.
  int http_status_ = 0;
  absl::Time attempt_started_;
  // The attempt was counted: when its stream ended, or else when its
  // transfer did. A cancelled attempt is not counted.
  bool attempt_recorded_ = false;
  bool whole_body_mode_ = false;
  std::optional<absl::Duration> retry_after_;
  std::string request_id_;
  std::string body_;  // Error body, or a non-streamed answer.
  absl::Status stream_error_;
  SseParser parser_;
  std::unique_ptr<StreamDecoder> decoder_;
  std::vector<std::string> deltas_;  // Reused by OnBody; empty between calls.
  std::string joined_;               // Reused by Emit.
};

HttpStreamingProvider::HttpStreamingProvider(
    std::unique_ptr<WireProtocol> protocol, HttpProviderOptions options,
    std::unique_ptr<CurlMultiLoop> loop)
    : protocol_(std::move(protocol)),
      options_(options),
      loop_(std::move(loop)),
      random_(std::random_device{}()) {}

HttpStreamingProvider::~HttpStreamingProvider() = default;

std::shared_ptr<CompletionCall> HttpStreamingProvider::Start(
    CompletionRequest request, std::shared_ptr<CompletionSink> sink) {
  auto call = std::make_shared<Call>(this, std::move(request), std::move(sink));
  call->Begin();
  return call;
}

}  // namespace chat::llm
