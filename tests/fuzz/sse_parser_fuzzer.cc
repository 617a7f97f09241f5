// SseParser::Feed on arbitrary bytes. Besides memory safety it checks the
// parser's contract: the same events (and the same buffered remainder)
// whether the bytes come in one piece, one byte at a time, or in chunks
// whose sizes the input itself picks.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "server/llm/sse_parser.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using chat::llm::SseEvent;
using chat::llm::SseParser;

std::vector<SseEvent> FeedAll(SseParser& parser, absl::string_view bytes,
                              const std::vector<size_t>& chunks) {
  std::vector<SseEvent> events;
  size_t at = 0;
  for (size_t i = 0; at < bytes.size(); ++i) {
    size_t n = chunks.empty() ? bytes.size() : chunks[i % chunks.size()];
    n = std::min(n, bytes.size() - at);
    for (SseEvent& e : parser.Feed(bytes.substr(at, n)))
      events.push_back(std::move(e));
    at += n;
  }
  return events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input(reinterpret_cast<const char*>(data), size);

  SseParser whole;
  const std::vector<SseEvent> expected = FeedAll(whole, input, {});
  for (const SseEvent& e : expected) {
    FUZZ_CHECK(e.id.find('\0') == std::string::npos, "an id holds a NUL");
  }

  SseParser bytewise;
  FUZZ_CHECK(FeedAll(bytewise, input, {1}) == expected,
             "feeding byte by byte changed the events");
  FUZZ_CHECK(bytewise.buffered_bytes() == whole.buffered_bytes(),
             "feeding byte by byte changed what is buffered");

  // Chunk sizes 1..16 taken from the input's bytes, so each input has its
  // own (reproducible) split.
  std::vector<size_t> chunks;
  for (size_t i = 0; i < size && i < 16; ++i)
    chunks.push_back(1 + data[i] % 16);
  SseParser chunked;
  FUZZ_CHECK(FeedAll(chunked, input, chunks) == expected,
             "feeding in chunks changed the events");
  FUZZ_CHECK(chunked.buffered_bytes() == whole.buffered_bytes(),
             "feeding in chunks changed what is buffered");
  return 0;
}
