#include "server/llm/json_scan.h"

#include <cstdint>

#include "common/utf8.h"

namespace chat::llm {
namespace {

// Deeper nesting is left to the full parse.
constexpr int kMaxDepth = 64;
// A number of at most this many bytes and no exponent is finite as a double,
// so nlohmann accepts it (it rejects a float that overflows).
constexpr ptrdiff_t kMaxNumberBytes = 64;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// A cursor over one JSON text. Every method returns false on anything it
// does not accept, leaving the cursor somewhere inside; callers then give up.
class Scanner {
 public:
  explicit Scanner(absl::string_view text)
      : p_(text.data()), end_(text.data() + text.size()) {}

  void SkipSpace() {
    while (p_ < end_ &&
           (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) {
      ++p_;
    }
  }

  // Consumes `c` after any whitespace.
  bool Consume(char c) {
    SkipSpace();
    if (p_ < end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }

  // True if the next token starts with `c` (not consumed).
  bool Next(char c) {
    SkipSpace();
    return p_ < end_ && *p_ == c;
  }

  bool AtEnd() {
    SkipSpace();
    return p_ == end_;
  }

  // A string without escapes, viewed in place (keys, enum-like values).
  bool ReadPlainString(absl::string_view* out) {
    if (!Consume('"')) return false;
    const char* start = p_;
    while (p_ < end_) {
      const unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        *out = absl::string_view(start, static_cast<size_t>(p_ - start));
        ++p_;
        return true;
      }
      if (c == '\\' || c < 0x20) return false;
      if (c < 0x80) {
        ++p_;
        continue;
      }
      size_t n = Utf8SequenceLength(p_, end_);
      if (n == 0) return false;
      p_ += n;
    }
    return false;
  }

  // A string, decoded into `*out` (replacing it); null: checked only.
  bool ReadString(std::string* out) {
    if (!Consume('"')) return false;
    if (out != nullptr) out->clear();
    while (true) {
      const char* run = p_;
      while (p_ < end_) {
        const unsigned char c = static_cast<unsigned char>(*p_);
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
        ++p_;
      }
      if (out != nullptr) out->append(run, static_cast<size_t>(p_ - run));
      if (p_ == end_) return false;
      const unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        ++p_;
        return true;
      }
      if (c < 0x20) return false;  // A raw control character.
      if (c >= 0x80) {
        size_t n = Utf8SequenceLength(p_, end_);
        if (n == 0) return false;
        if (out != nullptr) out->append(p_, n);
        p_ += n;
        continue;
      }
      if (!ReadEscape(out)) return false;
    }
  }

  // Any value, checked and skipped.
  bool SkipValue(int depth) {
    SkipSpace();
    if (p_ == end_) return false;
    switch (*p_) {
      case '"':
        return ReadString(nullptr);
      case '{': {
        if (depth >= kMaxDepth) return false;
        ++p_;
        if (Consume('}')) return true;
        do {
          if (!ReadString(nullptr) || !Consume(':') || !SkipValue(depth + 1))
            return false;
        } while (Consume(','));
        return Consume('}');
      }
      case '[': {
        if (depth >= kMaxDepth) return false;
        ++p_;
        if (Consume(']')) return true;
        do {
          if (!SkipValue(depth + 1)) return false;
        } while (Consume(','));
        return Consume(']');
      }
      case 't':
        return Literal("true");
      case 'f':
        return Literal("false");
      case 'n':
        return Literal("null");
      default:
        return SkipNumber();
    }
  }

  // An integer of at most 18 digits (so exact in an int64_t, and an integer
  // to nlohmann too), not followed by a fraction or an exponent.
  bool ReadInt(int64_t* value) {
    SkipSpace();
    bool negative = p_ < end_ && *p_ == '-';
    if (negative) ++p_;
    if (p_ == end_ || !IsDigit(*p_)) return false;
    int64_t v = 0;
    int digits = 0;
    if (*p_ == '0') {
      ++p_;
      digits = 1;
    } else {
      while (p_ < end_ && IsDigit(*p_)) {
        if (++digits > 18) return false;
        v = v * 10 + (*p_++ - '0');
      }
    }
    if (p_ < end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E' || IsDigit(*p_)))
      return false;
    *value = negative ? -v : v;
    return true;
  }

  // `null` (after whitespace).
  bool ReadNull() {
    SkipSpace();
    return Literal("null");
  }

  // An object whose keys have no escapes: `member(key)` reads each value.
  template <typename Member>
  bool ReadObject(Member member) {
    if (!Consume('{')) return false;
    if (Consume('}')) return true;
    do {
      absl::string_view key;
      if (!ReadPlainString(&key) || !Consume(':') || !member(key)) return false;
    } while (Consume(','));
    return Consume('}');
  }

 private:
  bool Literal(absl::string_view word) {
    if (static_cast<size_t>(end_ - p_) < word.size() ||
        absl::string_view(p_, word.size()) != word) {
      return false;
    }
    p_ += word.size();
    return true;
  }

  // -?(0|[1-9][0-9]*)(.[0-9]+)?, short; an exponent is left to the full
  // parse (1e999 overflows, which nlohmann rejects).
  bool SkipNumber() {
    const char* start = p_;
    if (p_ < end_ && *p_ == '-') ++p_;
    if (p_ == end_ || !IsDigit(*p_)) return false;
    if (*p_ == '0') {
      ++p_;
    } else {
      while (p_ < end_ && IsDigit(*p_)) ++p_;
    }
    if (p_ < end_ && *p_ == '.') {
      ++p_;
      if (p_ == end_ || !IsDigit(*p_)) return false;
      while (p_ < end_ && IsDigit(*p_)) ++p_;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) return false;
    return p_ - start <= kMaxNumberBytes;
  }

  bool ReadHex4(uint32_t* value) {
    if (end_ - p_ < 4) return false;
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = *p_++;
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v |= static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return false;
      }
    }
    *value = v;
    return true;
  }

  // The escape at the backslash under the cursor.
  bool ReadEscape(std::string* out) {
    ++p_;  // The backslash.
    if (p_ == end_) return false;
    char decoded;
    switch (*p_++) {
      case '"':
        decoded = '"';
        break;
      case '\\':
        decoded = '\\';
        break;
      case '/':
        decoded = '/';
        break;
      case 'b':
        decoded = '\b';
        break;
      case 'f':
        decoded = '\f';
        break;
      case 'n':
        decoded = '\n';
        break;
      case 'r':
        decoded = '\r';
        break;
      case 't':
        decoded = '\t';
        break;
      case 'u': {
        uint32_t cp = 0;
        if (!ReadHex4(&cp)) return false;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return false;  // A lone low half.
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          // A high half must be followed by an escaped low half.
          uint32_t low = 0;
          if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
          p_ += 2;
          if (!ReadHex4(&low) || low < 0xDC00 || low > 0xDFFF) return false;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        if (out != nullptr) AppendUtf8(cp, out);
        return true;
      }
      default:
        return false;
    }
    if (out != nullptr) out->push_back(decoded);
    return true;
  }

  const char* p_;
  const char* const end_;
};

// True the first time a field is met: a second occurrence of a key is left
// to the full parse, where the last one wins.
bool Once(bool* seen) {
  if (*seen) return false;
  *seen = true;
  return true;
}

// {"input_tokens": N, "output_tokens": N, ...}
bool ReadUsage(Scanner& s, AnthropicUsage* usage) {
  auto read = [&](std::optional<int64_t>* field) {
    if (field->has_value()) return false;
    int64_t v = 0;
    if (!s.ReadInt(&v)) return false;
    *field = v;
    return true;
  };
  return s.ReadObject([&](absl::string_view key) {
    if (key == "input_tokens") return read(&usage->input_tokens);
    if (key == "cache_read_input_tokens")
      return read(&usage->cache_read_input_tokens);
    if (key == "cache_creation_input_tokens")
      return read(&usage->cache_creation_input_tokens);
    if (key == "output_tokens") return read(&usage->output_tokens);
    return s.SkipValue(3);
  });
}

// A string, once, into an optional.
bool ReadOptionalString(Scanner& s, std::optional<std::string>* out) {
  if (out->has_value()) return false;
  out->emplace();
  return s.ReadString(&**out);
}

// A string or null ("").
bool ReadStringOrNull(Scanner& s, std::string* out) {
  if (s.Next('n')) {
    out->clear();
    return s.ReadNull();
  }
  return s.ReadString(out);
}

// choices[0] of an OpenAI chunk.
bool ReadChoice(Scanner& s, OpenAiChunkFields* fields) {
  bool seen_delta = false, seen_finish = false;
  return s.ReadObject([&](absl::string_view key) {
    if (key == "delta") {
      if (seen_delta) return false;
      seen_delta = true;
      if (s.Next('n')) return s.ReadNull();
      fields->has_delta = true;
      bool seen_content = false;
      return s.ReadObject([&](absl::string_view delta_key) {
        if (delta_key != "content") return s.SkipValue(3);
        if (seen_content) return false;
        seen_content = true;
        return ReadStringOrNull(s, &fields->content);
      });
    }
    if (key == "finish_reason") {
      if (seen_finish) return false;
      seen_finish = true;
      return ReadStringOrNull(s, &fields->finish_reason);
    }
    return s.SkipValue(2);
  });
}

}  // namespace

bool ScanAnthropicEvent(absl::string_view data, AnthropicEventFields* fields) {
  *fields = AnthropicEventFields();
  Scanner s(data);
  bool seen_type = false;
  bool ok = s.ReadObject([&](absl::string_view key) {
    if (key == "type") {
      absl::string_view type;
      if (!Once(&seen_type) || !s.ReadPlainString(&type)) return false;
      fields->type = std::string(type);
      return true;
    }
    if (key == "delta") {
      if (!Once(&fields->has_delta)) return false;
      bool seen_delta_type = false, seen_stop = false;
      return s.ReadObject([&](absl::string_view k) {
        if (k == "type") {
          absl::string_view type;
          if (!Once(&seen_delta_type) || !s.ReadPlainString(&type))
            return false;
          fields->delta_type = std::string(type);
          return true;
        }
        if (k == "text") return ReadOptionalString(s, &fields->delta_text);
        if (k == "stop_reason") {
          return Once(&seen_stop) && ReadStringOrNull(s, &fields->stop_reason);
        }
        return s.SkipValue(2);
      });
    }
    if (key == "usage") {
      if (fields->usage.has_value()) return false;
      return ReadUsage(s, &fields->usage.emplace());
    }
    if (key == "message") {
      if (!Once(&fields->has_message)) return false;
      bool seen_model = false;
      return s.ReadObject([&](absl::string_view k) {
        if (k == "model")
          return Once(&seen_model) && s.ReadString(&fields->model);
        if (k == "usage") {
          if (fields->message_usage.has_value()) return false;
          return ReadUsage(s, &fields->message_usage.emplace());
        }
        return s.SkipValue(2);
      });
    }
    if (key == "content_block") {
      if (!Once(&fields->has_block)) return false;
      bool seen_block_type = false;
      return s.ReadObject([&](absl::string_view k) {
        if (k == "type") {
          absl::string_view type;
          if (!Once(&seen_block_type) || !s.ReadPlainString(&type))
            return false;
          fields->block_type = std::string(type);
          return true;
        }
        if (k == "text") return ReadOptionalString(s, &fields->block_text);
        return s.SkipValue(2);
      });
    }
    if (key == "error") return false;
    return s.SkipValue(1);
  });
  if (!ok || !s.AtEnd() || !seen_type) return false;
  const std::string& t = fields->type;
  return t == "content_block_delta" || t == "message_start" ||
         t == "message_delta" || t == "message_stop" ||
         t == "content_block_start" || t == "content_block_stop" || t == "ping";
}

bool ScanOpenAiChunk(absl::string_view data, OpenAiChunkFields* fields) {
  *fields = OpenAiChunkFields();
  Scanner s(data);
  bool seen_model = false, seen_choices = false, seen_usage = false;
  return s.ReadObject([&](absl::string_view key) {
    if (key == "error") return false;
    if (key == "usage") {
      // The last chunk's usage object is rare: the full parse reads it.
      if (seen_usage) return false;
      seen_usage = true;
      return s.ReadNull();
    }
    if (key == "model") {
      if (seen_model) return false;
      seen_model = true;
      return s.ReadString(&fields->model);
    }
    if (key == "choices") {
      if (seen_choices) return false;
      seen_choices = true;
      if (s.Next('n')) return s.ReadNull();
      if (!s.Consume('[')) return false;
      if (s.Consume(']')) return true;
      if (!ReadChoice(s, fields)) return false;
      while (s.Consume(',')) {
        if (!s.SkipValue(2)) return false;
      }
      return s.Consume(']');
    }
    return s.SkipValue(1);
  }) && s.AtEnd();
}

}  // namespace chat::llm
