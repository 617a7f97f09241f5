#ifndef CHAT_TESTS_FUZZ_PROVIDER_DECODER_FUZZ_H_
#define CHAT_TESTS_FUZZ_PROVIDER_DECODER_FUZZ_H_

// What the anthropic_response and openai_response harnesses share: an
// upstream 200 response, decoded both ways HttpStreamingProvider may read it.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/llm/http_streaming_provider.h"
#include "server/llm/sse_parser.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/server/llm/json_scan_reference.h"

namespace chat::llm {

// Decodes `body` as an SSE stream (each event to OnEvent until one fails, as
// the provider does), then, with a fresh decoder, as a
// whole JSON body. A decoder that says it is done must give a result. The
// fast readers of events (server/llm/json_scan.h) must read the events,
// and the whole body as one event, exactly as the full parse does.
inline void DecodeResponse(const WireProtocol& protocol,
                           absl::string_view body) {
  {
    std::unique_ptr<StreamDecoder> decoder = protocol.NewDecoder();
    SseParser parser;
    std::vector<std::string> deltas;
    absl::Status status;
    for (const SseEvent& event : parser.Feed(body)) {
      status = decoder->OnEvent(event, &deltas);
      if (!status.ok()) break;
    }
    FUZZ_CHECK(status.ok() || status.message().size() > 0,
               "an event failed without saying why");
    if (status.ok() && decoder->done()) {
      FUZZ_CHECK(decoder->Finish().ok(), "done, yet Finish() failed");
    } else if (status.ok()) {
      (void)decoder->Finish();
    }
  }
  FUZZ_CHECK(CompareDecodersOn(body).empty(),
             "the fast path read events unlike the full parse");
  {
    std::unique_ptr<StreamDecoder> decoder = protocol.NewDecoder();
    std::vector<std::string> deltas;
    absl::Status status = decoder->OnWholeBody(body, &deltas);
    if (status.ok()) {
      FUZZ_CHECK(decoder->done(), "a whole body decoded, yet not done");
      FUZZ_CHECK(decoder->Finish().ok(),
                 "a whole body decoded, yet Finish() failed");
    } else {
      FUZZ_CHECK(deltas.empty(), "a failed body still produced text");
    }
  }
}

}  // namespace chat::llm

#endif  // CHAT_TESTS_FUZZ_PROVIDER_DECODER_FUZZ_H_
