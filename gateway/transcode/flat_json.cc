#include "gateway/transcode/flat_json.h"

#include <cmath>
#include <cstdint>
#include <string>

#include "absl/strings/numbers.h"
#include "common/utf8.h"
#include "google/protobuf/descriptor.h"

namespace chat::gateway {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// Doubles from integer tokens go through int64 in protobuf's parser, which
// refuses those a double cannot hold exactly; up to 15 digits always fit.
constexpr size_t kMaxExactIntegerDigits = 15;

bool IsJsonSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

class Reader {
 public:
  explicit Reader(absl::string_view text)
      : p_(text.data()), end_(text.data() + text.size()) {}

  void SkipSpace() {
    while (p_ < end_ && IsJsonSpace(*p_)) ++p_;
  }
  bool AtEnd() const { return p_ == end_; }
  bool Consume(char c) {
    if (p_ == end_ || *p_ != c) return false;
    ++p_;
    return true;
  }
  bool ConsumeWord(absl::string_view word) {
    if (static_cast<size_t>(end_ - p_) < word.size() ||
        absl::string_view(p_, word.size()) != word) {
      return false;
    }
    p_ += word.size();
    return true;
  }

  // A key: a string without escapes, returned in place.
  bool ReadKey(absl::string_view* key) {
    if (!Consume('"')) return false;
    const char* start = p_;
    while (p_ < end_ && *p_ != '"') {
      const unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '\\' || c < 0x20 || c >= 0x80) return false;
      ++p_;
    }
    if (p_ == end_) return false;
    *key = absl::string_view(start, p_ - start);
    ++p_;
    return true;
  }

  // A string value with the short escapes (no \u), of well-formed UTF-8.
  bool ReadString(std::string* out) {
    if (!Consume('"')) return false;
    out->clear();
    while (true) {
      const char* run = p_;
      while (p_ < end_) {
        const unsigned char c = static_cast<unsigned char>(*p_);
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
        ++p_;
      }
      out->append(run, p_ - run);
      if (p_ == end_) return false;
      const unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        ++p_;
        return true;
      }
      if (c < 0x20) return false;  // Control characters must be escaped.
      if (c >= 0x80) {
        const size_t n = Utf8SequenceLength(p_, end_);
        if (n == 0) return false;
        out->append(p_, n);
        p_ += n;
        continue;
      }
      // A backslash.
      if (++p_ == end_) return false;
      char unescaped;
      switch (*p_) {
        case '"':
          unescaped = '"';
          break;
        case '\\':
          unescaped = '\\';
          break;
        case '/':
          unescaped = '/';
          break;
        case 'b':
          unescaped = '\b';
          break;
        case 'f':
          unescaped = '\f';
          break;
        case 'n':
          unescaped = '\n';
          break;
        case 'r':
          unescaped = '\r';
          break;
        case 't':
          unescaped = '\t';
          break;
        default:  // \u (surrogate pairs and all) is left to protobuf.
          return false;
      }
      out->push_back(unescaped);
      ++p_;
    }
  }

  // A number token in RFC 8259's grammar; `integer` says whether it had
  // neither a fraction nor an exponent.
  bool ReadNumber(absl::string_view* token, bool* integer) {
    const char* start = p_;
    Consume('-');
    if (p_ == end_) return false;
    if (*p_ == '0') {
      ++p_;
    } else if (!ReadDigits()) {
      return false;
    }
    *integer = true;
    if (Consume('.')) {
      *integer = false;
      if (!ReadDigits()) return false;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      *integer = false;
      ++p_;
      if (!Consume('+')) Consume('-');
      if (!ReadDigits()) return false;
    }
    *token = absl::string_view(start, p_ - start);
    return true;
  }

 private:
  bool ReadDigits() {
    const char* start = p_;
    while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    return p_ != start;
  }

  const char* p_;
  const char* const end_;
};

// As protobuf's parser looks a key up: by JSON name, then by proto name.
// Request types have a handful of fields, so a scan beats a map.
const FieldDescriptor* FindField(const Descriptor* type,
                                 absl::string_view key) {
  for (int i = 0; i < type->field_count(); ++i) {
    if (type->field(i)->json_name() == key) return type->field(i);
  }
  for (int i = 0; i < type->field_count(); ++i) {
    if (type->field(i)->name() == key) return type->field(i);
  }
  return nullptr;
}

// Reads the value at `reader` into `field`; false when it is not a value of
// the plain form this reader handles.
bool ReadField(Reader& reader, Message* message, const FieldDescriptor* field,
               std::string* scratch) {
  const Reflection* r = message->GetReflection();
  if (field->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
    if (field->type() == FieldDescriptor::TYPE_BYTES) return false;
    if (!reader.ReadString(scratch)) return false;
    r->SetString(message, field, std::move(*scratch));
    return true;
  }
  if (field->cpp_type() == FieldDescriptor::CPPTYPE_BOOL) {
    if (reader.ConsumeWord("true")) {
      r->SetBool(message, field, true);
      return true;
    }
    if (reader.ConsumeWord("false")) {
      r->SetBool(message, field, false);
      return true;
    }
    return false;
  }
  absl::string_view token;
  bool integer = false;
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: {
      int32_t n;
      if (!reader.ReadNumber(&token, &integer) || !integer ||
          !absl::SimpleAtoi(token, &n)) {
        return false;
      }
      r->SetInt32(message, field, n);
      return true;
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      int64_t n;
      if (!reader.ReadNumber(&token, &integer) || !integer ||
          !absl::SimpleAtoi(token, &n)) {
        return false;
      }
      r->SetInt64(message, field, n);
      return true;
    }
    case FieldDescriptor::CPPTYPE_UINT32: {
      uint32_t n;
      if (!reader.ReadNumber(&token, &integer) || !integer || token[0] == '-' ||
          !absl::SimpleAtoi(token, &n)) {
        return false;
      }
      r->SetUInt32(message, field, n);
      return true;
    }
    case FieldDescriptor::CPPTYPE_UINT64: {
      uint64_t n;
      if (!reader.ReadNumber(&token, &integer) || !integer || token[0] == '-' ||
          !absl::SimpleAtoi(token, &n)) {
        return false;
      }
      r->SetUInt64(message, field, n);
      return true;
    }
    case FieldDescriptor::CPPTYPE_DOUBLE: {
      if (!reader.ReadNumber(&token, &integer)) return false;
      double d;
      if (integer) {
        // As protobuf reads it: an integer, then converted.
        const size_t digits = token.size() - (token[0] == '-' ? 1 : 0);
        int64_t n;
        if (digits > kMaxExactIntegerDigits || !absl::SimpleAtoi(token, &n)) {
          return false;
        }
        d = static_cast<double>(n);
      } else if (!absl::SimpleAtod(token, &d)) {
        return false;
      }
      // Zero (its sign differs between the paths) and overflow or
      // underflow are left to protobuf.
      if (d == 0 || !std::isfinite(d)) return false;
      r->SetDouble(message, field, d);
      return true;
    }
    default:  // Floats, enums and messages: protobuf's path.
      return false;
  }
}

}  // namespace

bool ReadFlatJsonObject(absl::string_view body, Message* message) {
  const Descriptor* type = message->GetDescriptor();
  // Well-known types have JSON forms of their own.
  if (type->file()->package() == "google.protobuf") return false;
  Reader reader(body);
  reader.SkipSpace();
  if (!reader.Consume('{')) return false;
  reader.SkipSpace();
  uint64_t seen = 0;  // By field index: a repeated key goes to protobuf.
  std::string scratch;
  if (!reader.Consume('}')) {
    while (true) {
      absl::string_view key;
      if (!reader.ReadKey(&key)) return false;
      const FieldDescriptor* field = FindField(type, key);
      if (field == nullptr || field->is_repeated() ||
          field->real_containing_oneof() != nullptr || field->index() >= 64) {
        return false;
      }
      const uint64_t bit = uint64_t{1} << field->index();
      if (seen & bit) return false;
      seen |= bit;
      reader.SkipSpace();
      if (!reader.Consume(':')) return false;
      reader.SkipSpace();
      if (!ReadField(reader, message, field, &scratch)) return false;
      reader.SkipSpace();
      if (reader.Consume('}')) break;
      if (!reader.Consume(',')) return false;
      reader.SkipSpace();
    }
  }
  reader.SkipSpace();
  return reader.AtEnd();
}

}  // namespace chat::gateway
