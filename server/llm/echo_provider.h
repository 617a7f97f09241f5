#ifndef CHAT_SERVER_LLM_ECHO_PROVIDER_H_
#define CHAT_SERVER_LLM_ECHO_PROVIDER_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "server/llm/llm_provider.h"
#include "server/llm/timer_queue.h"

namespace chat::llm {

struct EchoOptions {
  // Pause before each delta, so streaming is visible. Zero: no pause.
  absl::Duration delta_delay = absl::Milliseconds(20);
  // Timer threads pacing the calls (each call stays on one). 0: one per
  // core, so that delivering deltas is not bound to a single core.
  int threads = 0;
};

// The offline provider: deterministic, no network, the default when no
// provider key is configured. Its reply quotes the new message and the
// previous user message, which shows that the conversation's memory reaches
// the model, and it arrives word by word. Token counts are bytes / 4.
class EchoProvider final : public LlmProvider {
 public:
  explicit EchoProvider(EchoOptions options);
  ~EchoProvider() override;

  std::shared_ptr<CompletionCall> Start(
      CompletionRequest request, std::shared_ptr<CompletionSink> sink) override;
  absl::string_view name() const override { return "echo"; }

  // The reply EchoProvider gives to `request`, whole.
  static std::string Reply(const CompletionRequest& request);
  // `text` cut into the deltas it is streamed as: words with the spaces
  // that follow them.
  static std::vector<std::string> SplitIntoDeltas(absl::string_view text);

 private:
  class Call;
  const EchoOptions options_;
  std::vector<std::unique_ptr<TimerQueue>> timers_;
  std::atomic<size_t> next_timer_{0};
};

}  // namespace chat::llm

#endif  // CHAT_SERVER_LLM_ECHO_PROVIDER_H_
