#ifndef CHAT_TESTS_SERVER_LLM_JSON_SCAN_REFERENCE_H_
#define CHAT_TESTS_SERVER_LLM_JSON_SCAN_REFERENCE_H_

// Compares a decoder that reads events with the fast scanners of
// server/llm/json_scan.h against one that parses every event fully, for
// json_scan_test and the anthropic_response / openai_response fuzzers.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "server/llm/anthropic_provider.h"
#include "server/llm/http_streaming_provider.h"
#include "server/llm/openai_provider.h"
#include "server/llm/sse_parser.h"

namespace chat::llm {

// Feeds `events` to a fast-path and a full-parse decoder (made by `make`,
// NewAnthropicDecoder or NewOpenAiDecoder), stopping at the first error as
// the provider does. Returns "" if every status, delta, done() and the
// Finish() result are the same, else what differed.
inline std::string CompareDecoders(std::unique_ptr<StreamDecoder> (*make)(bool),
                                   const std::vector<SseEvent>& events) {
  std::unique_ptr<StreamDecoder> fast = make(true);
  std::unique_ptr<StreamDecoder> full = make(false);
  std::vector<std::string> fast_deltas, full_deltas;
  for (size_t i = 0; i < events.size(); ++i) {
    absl::Status a = fast->OnEvent(events[i], &fast_deltas);
    absl::Status b = full->OnEvent(events[i], &full_deltas);
    if (a != b) {
      return absl::StrCat("event ", i, ": status ", a.ToString(), " vs ",
                          b.ToString());
    }
    if (fast_deltas != full_deltas)
      return absl::StrCat("event ", i, ": deltas");
    if (fast->done() != full->done())
      return absl::StrCat("event ", i, ": done()");
    if (!a.ok()) return "";
  }
  absl::StatusOr<CompletionResult> a = fast->Finish();
  absl::StatusOr<CompletionResult> b = full->Finish();
  if (a.status() != b.status()) return "Finish() status";
  if (a.ok() && (a->model != b->model || a->stop_reason != b->stop_reason ||
                 a->input_tokens != b->input_tokens ||
                 a->output_tokens != b->output_tokens)) {
    return absl::StrCat("Finish(): ", a->model, "/", a->stop_reason, "/",
                        a->input_tokens, "/", a->output_tokens, " vs ",
                        b->model, "/", b->stop_reason, "/", b->input_tokens,
                        "/", b->output_tokens);
  }
  return "";
}

// Both protocols' decoders on the events of `body` read as SSE, and on
// `body` as the data of one event.
inline std::string CompareDecodersOn(absl::string_view body) {
  SseParser parser;
  std::vector<SseEvent> events = parser.Feed(body);
  std::vector<SseEvent> one = {SseEvent{"", std::string(body), ""}};
  for (auto make : {&NewAnthropicDecoder, &NewOpenAiDecoder}) {
    for (const std::vector<SseEvent>* e : {&events, &one}) {
      if (std::string diff = CompareDecoders(make, *e); !diff.empty())
        return diff;
    }
  }
  return "";
}

}  // namespace chat::llm

#endif  // CHAT_TESTS_SERVER_LLM_JSON_SCAN_REFERENCE_H_
