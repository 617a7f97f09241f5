#include "server/llm/request_json.h"

#include <nlohmann/json.hpp>

#include "common/utf8.h"

namespace chat::llm {
namespace {

bool NeedsEscape(unsigned char c) { return c < 0x20 || c == '"' || c == '\\'; }

}  // namespace

void AppendJsonString(absl::string_view text, std::string* out) {
  const size_t start_size = out->size();
  out->reserve(start_size + text.size() + 2);
  out->push_back('"');
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    const unsigned char* run = p;
    while (p < end && *p < 0x80 && !NeedsEscape(*p)) ++p;
    out->append(reinterpret_cast<const char*>(run), p - run);
    if (p == end) break;
    const unsigned char c = *p;
    if (c >= 0x80) {
      const size_t n = Utf8SequenceLength(reinterpret_cast<const char*>(p),
                                          reinterpret_cast<const char*>(end));
      if (n == 0) {
        // Ill-formed: nlohmann's own replacement rules (how many bytes one
        // U+FFFD stands for) decide, on the whole string.
        out->resize(start_size);
        out->append(nlohmann::json(std::string(text))
                        .dump(-1, ' ', false,
                              nlohmann::json::error_handler_t::replace));
        return;
      }
      out->append(reinterpret_cast<const char*>(p), n);
      p += n;
      continue;
    }
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default: {
        static constexpr char kHex[] = "0123456789abcdef";
        const char escaped[] = {'\\', 'u',          '0',
                                '0',  kHex[c >> 4], kHex[c & 0xF]};
        out->append(escaped, sizeof(escaped));
      }
    }
    ++p;
  }
  out->push_back('"');
}

void AppendJsonDouble(double value, std::string* out) {
  // Rare (only when a caller sets a temperature): nlohmann's own printer.
  out->append(nlohmann::json(value).dump());
}

}  // namespace chat::llm
