#include "server/llm/echo_provider.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace chat::llm {
namespace {

int64_t EstimateTokens(size_t bytes) {
  return static_cast<int64_t>((bytes + 3) / 4);
}

}  // namespace

// One completion: a list of deltas sent one per timer tick. Keeps itself
// alive through the callbacks it has scheduled.
class EchoProvider::Call final : public CompletionCall,
                                 public std::enable_shared_from_this<Call> {
 public:
  Call(std::vector<std::string> deltas, CompletionResult result,
       std::shared_ptr<CompletionSink> sink, absl::Duration delay,
       TimerQueue* timers)
      : deltas_(std::move(deltas)),
        result_(std::move(result)),
        sink_(std::move(sink)),
        delay_(delay),
        timers_(timers) {}

  void ScheduleNext() {
    timers_->RunAt(absl::Now() + delay_,
                   [self = shared_from_this()] { self->Step(); });
  }

  // Ends the call at once rather than at the next tick.
  void Cancel() override {
    if (cancelled_.exchange(true)) return;
    timers_->RunAt(absl::Now(), [self = shared_from_this()] { self->Step(); });
  }

 private:
  // Runs on the timer thread; steps of one call never overlap.
  void Step() {
    if (sink_ == nullptr) return;  // Finished by an earlier step.
    if (cancelled_.load()) {
      Finish(absl::CancelledError("the completion was cancelled"));
      return;
    }
    if (next_ < deltas_.size()) {
      sink_->OnDelta(deltas_[next_++]);
      ScheduleNext();
      return;
    }
    Finish(result_);
  }

  void Finish(absl::StatusOr<CompletionResult> result) {
    std::shared_ptr<CompletionSink> sink = std::move(sink_);
    sink->OnComplete(std::move(result));
  }

  const std::vector<std::string> deltas_;
  const CompletionResult result_;
  std::shared_ptr<CompletionSink> sink_;
  const absl::Duration delay_;
  TimerQueue* const timers_;
  size_t next_ = 0;
  std::atomic<bool> cancelled_{false};
};

EchoProvider::EchoProvider(EchoOptions options) : options_(options) {
  int threads = options.threads > 0
                    ? options.threads
                    : static_cast<int>(std::thread::hardware_concurrency());
  threads = std::max(threads, 1);
  for (int i = 0; i < threads; ++i)
    timers_.push_back(std::make_unique<TimerQueue>());
}

EchoProvider::~EchoProvider() = default;

std::string EchoProvider::Reply(const CompletionRequest& request) {
  // The last message is the new one; the user message before it, if any, is
  // the memory this reply proves.
  const std::vector<PromptMessage>& messages = request.messages;
  std::string latest = messages.empty() ? "" : messages.back().content;
  const PromptMessage* previous_user = nullptr;
  int user_messages = 0;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].role != "user") continue;
    ++user_messages;
    if (i + 1 < messages.size()) previous_user = &messages[i];
  }
  std::string reply = absl::StrCat("You said: \"", latest, "\".");
  if (previous_user == nullptr) {
    absl::StrAppend(&reply, " This is the start of our conversation.");
  } else {
    absl::StrAppend(&reply, " Before that you said: \"", previous_user->content,
                    "\". This is message ", user_messages,
                    " of our conversation.");
  }
  return reply;
}

std::vector<std::string> EchoProvider::SplitIntoDeltas(absl::string_view text) {
  std::vector<std::string> deltas;
  size_t start = 0;
  while (start < text.size()) {
    size_t space = text.find(' ', start);
    size_t end = space == absl::string_view::npos ? text.size() : space + 1;
    deltas.emplace_back(text.substr(start, end - start));
    start = end;
  }
  return deltas;
}

std::shared_ptr<CompletionCall> EchoProvider::Start(
    CompletionRequest request, std::shared_ptr<CompletionSink> sink) {
  std::string reply = Reply(request);
  size_t prompt_bytes = request.system_prompt.size();
  for (const PromptMessage& m : request.messages)
    prompt_bytes += m.content.size();
  CompletionResult result;
  result.model = request.model.empty() ? "echo" : request.model;
  result.provider = "echo";
  result.stop_reason = "end_turn";
  result.input_tokens = EstimateTokens(prompt_bytes);
  result.output_tokens = EstimateTokens(reply.size());
  // A stop sequence ends the reply where it first appears, as a model's
  // would, without the sequence itself.
  size_t stop_at = std::string::npos;
  for (const std::string& stop : request.stop) {
    if (stop.empty()) continue;
    stop_at = std::min(stop_at, reply.find(stop));
  }
  if (stop_at != std::string::npos) {
    reply.resize(stop_at);
    result.stop_reason = "stop_sequence";
    result.output_tokens = EstimateTokens(reply.size());
  }
  std::vector<std::string> deltas = SplitIntoDeltas(reply);
  if (request.max_tokens.has_value() &&
      static_cast<int64_t>(deltas.size()) > *request.max_tokens) {
    // One word stands for one token here: honour the limit as a model would.
    deltas.resize(*request.max_tokens);
    result.stop_reason = "max_tokens";
  }
  if (request.max_tokens.has_value()) {
    // A model never reports more output than it was allowed: quotas rely
    // on it.
    result.output_tokens =
        std::min<int64_t>(result.output_tokens, *request.max_tokens);
  }
  auto call = std::make_shared<Call>(
      std::move(deltas), std::move(result), std::move(sink),
      options_.delta_delay, timers_[next_timer_++ % timers_.size()].get());
  call->ScheduleNext();
  return call;
}

}  // namespace chat::llm
