#include "gateway/transcode/json_printer.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/container/inlined_vector.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/stubs/strutil.h"
#include "nlohmann/json.hpp"

namespace chat::gateway {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::FileDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// util::MessageToJsonString fails past 64 levels; staying well below keeps
// the reference and this printer on the same side of that limit.
constexpr int kMaxDepth = 32;

constexpr char kHex[] = "0123456789abcdef";

void AppendU16Escape(uint32_t unit, std::string* out) {
  char buf[6] = {'\\',
                 'u',
                 kHex[(unit >> 12) & 0xf],
                 kHex[(unit >> 8) & 0xf],
                 kHex[(unit >> 4) & 0xf],
                 kHex[unit & 0xf]};
  out->append(buf, sizeof(buf));
}

// Reads one strictly valid UTF-8 sequence (no overlong forms, surrogates or
// code points past U+10FFFF) starting at s[*i], a byte >= 0x80. Returns
// false on anything else: the reference printer silently drops such bytes
// and nlohmann replaces them, so those strings take the reference path.
bool ReadMultibyte(absl::string_view s, size_t* i, uint32_t* cp) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t b0 = byte(*i);
  int extra;
  uint8_t lo = 0x80, hi = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    extra = 1;
    *cp = b0 & 0x1f;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    extra = 2;
    *cp = b0 & 0x0f;
    if (b0 == 0xe0) lo = 0xa0;
    if (b0 == 0xed) hi = 0x9f;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    extra = 3;
    *cp = b0 & 0x07;
    if (b0 == 0xf0) lo = 0x90;
    if (b0 == 0xf4) hi = 0x8f;
  } else {
    return false;
  }
  if (*i + extra >= s.size()) return false;
  for (int k = 1; k <= extra; ++k) {
    const uint8_t b = byte(*i + k);
    if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xbf)) return false;
    *cp = (*cp << 6) | (b & 0x3f);
  }
  *i += extra + 1;
  return true;
}

// protobuf 3.21's JsonEscaping: the JSON-required escapes, '<' and '>' for
// HTML, DEL and the C1 controls, and code points that are invisible or
// reorder text (U+2028/2029 among them), all as lowercase \uXXXX.
void AppendProtobufString(absl::string_view s, std::string* out, bool* ok) {
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    const uint8_t c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      ++i;
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
        case '\t':
          out->append("\\t");
          break;
        case '\n':
          out->append("\\n");
          break;
        case '\f':
          out->append("\\f");
          break;
        case '\r':
          out->append("\\r");
          break;
        default:
          if (c < 0x20 || c == '<' || c == '>' || c == 0x7f) {
            AppendU16Escape(c, out);
          } else {
            out->push_back(static_cast<char>(c));
          }
      }
      continue;
    }
    const size_t start = i;
    uint32_t cp;
    if (!ReadMultibyte(s, &i, &cp)) {
      *ok = false;
      return;
    }
    if (cp < 0xa0 || cp == 0xad || (cp >= 0x600 && cp <= 0x603) ||
        cp == 0x6dd || cp == 0x70f || cp == 0x17b4 || cp == 0x17b5 ||
        (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) ||
        (cp >= 0x2060 && cp <= 0x2064) || (cp >= 0x206a && cp <= 0x206f) ||
        cp == 0xfeff || (cp >= 0xfff9 && cp <= 0xfffb)) {
      AppendU16Escape(cp, out);
    } else if (cp == 0xe0001 || (cp >= 0x1d173 && cp <= 0x1d17a) ||
               (cp >= 0xe0020 && cp <= 0xe007f)) {
      const uint32_t v = cp - 0x10000;
      AppendU16Escape(0xd800 + (v >> 10), out);
      AppendU16Escape(0xdc00 + (v & 0x3ff), out);
    } else {
      out->append(s.data() + start, i - start);
    }
  }
  out->push_back('"');
}

// nlohmann's serializer (ensure_ascii off): the JSON-required escapes only,
// other control characters as lowercase \u00XX, everything else verbatim.
void AppendNlohmannString(absl::string_view s, std::string* out, bool* ok) {
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    const uint8_t c = static_cast<uint8_t>(s[i]);
    if (c >= 0x80) {
      const size_t start = i;
      uint32_t cp;
      if (!ReadMultibyte(s, &i, &cp)) {
        *ok = false;
        return;
      }
      out->append(s.data() + start, i - start);
      continue;
    }
    ++i;
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
      case '\t':
        out->append("\\t");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\f':
        out->append("\\f");
        break;
      case '\r':
        out->append("\\r");
        break;
      default:
        if (c < 0x20) {
          AppendU16Escape(c, out);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

class Printer {
 public:
  Printer(JsonPrintStyle style, std::string* out) : style_(style), out_(out) {}

  bool PrintMessage(const Message& message, int depth) {
    if (depth > kMaxDepth) return false;
    const Descriptor* type = message.GetDescriptor();
    const FileDescriptor* file = type->file();
    // Proto2 defaults and the well-known types' own JSON forms are not
    // modelled here.
    if (file->syntax() != FileDescriptor::SYNTAX_PROTO3 ||
        file->package() == "google.protobuf") {
      return false;
    }
    const Reflection* r = message.GetReflection();
    out_->push_back('{');
    bool first = true;
    // The reference fills defaults into a tree laid out in declaration
    // order, except scalar members of a oneof (proto3 `optional` included),
    // which it appends when they arrive, i.e. in field-number order.
    absl::InlinedVector<const FieldDescriptor*, 8> late;
    for (int i = 0; i < type->field_count(); ++i) {
      const FieldDescriptor* field = type->field(i);
      if (field->is_map()) return false;
      const bool is_message =
          field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE;
      if (field->containing_oneof() != nullptr && !is_message) {
        if (r->HasField(message, field)) late.push_back(field);
        continue;
      }
      if (field->is_repeated()) {
        Key(field, &first);
        out_->push_back('[');
        const int n = r->FieldSize(message, field);
        for (int k = 0; k < n; ++k) {
          if (k > 0) out_->push_back(',');
          if (is_message) {
            if (!PrintMessage(r->GetRepeatedMessage(message, field, k),
                              depth + 1)) {
              return false;
            }
          } else if (!PrintScalar(message, field, k)) {
            return false;
          }
        }
        out_->push_back(']');
      } else if (is_message) {
        if (!r->HasField(message, field)) continue;
        Key(field, &first);
        if (!PrintMessage(r->GetMessage(message, field), depth + 1)) {
          return false;
        }
      } else {
        Key(field, &first);
        if (!PrintScalar(message, field, -1)) return false;
      }
    }
    if (late.size() > 1) {
      std::sort(late.begin(), late.end(),
                [](const FieldDescriptor* a, const FieldDescriptor* b) {
                  return a->number() < b->number();
                });
    }
    for (const FieldDescriptor* field : late) {
      Key(field, &first);
      if (!PrintScalar(message, field, -1)) return false;
    }
    out_->push_back('}');
    return true;
  }

 private:
  bool nlohmann() const {
    return style_ == JsonPrintStyle::kNlohmannInt64AsNumbers;
  }

  void Key(const FieldDescriptor* field, bool* first) {
    if (!*first) out_->push_back(',');
    *first = false;
    out_->push_back('"');
    out_->append(field->name());
    out_->append("\":");
  }

  template <typename T>
  void Int64(T value) {
    if (nlohmann()) {
      absl::StrAppend(out_, value);
    } else {
      absl::StrAppend(out_, "\"", value, "\"");
    }
  }

  // `text` is protobuf's SimpleDtoa/SimpleFtoa form of a finite number.
  void Number(const std::string& text) {
    if (!nlohmann()) {
      out_->append(text);
      return;
    }
    // nlohmann reads digits without '.' or an exponent as an integer (so
    // "-0" becomes 0) and anything else as a double, which it writes back
    // in its shortest round-trip form.
    if (text.find_first_of(".eE") == std::string::npos) {
      out_->append(text == "-0" ? "0" : text);
      return;
    }
    const double value = std::strtod(text.c_str(), nullptr);
    char buf[64];
    char* end = nlohmann::detail::to_chars(buf, buf + sizeof(buf), value);
    out_->append(buf, static_cast<size_t>(end - buf));
  }

  // NaN and the infinities are strings in proto3 JSON.
  bool NonFinite(double value) {
    if (std::isnan(value)) {
      out_->append("\"NaN\"");
    } else if (std::isinf(value)) {
      out_->append(value > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    } else {
      return false;
    }
    return true;
  }

  // One value of `field`: element `index` of a repeated field, or the
  // singular value when `index` is -1.
  bool PrintScalar(const Message& m, const FieldDescriptor* field, int index) {
    const Reflection* r = m.GetReflection();
    const bool rep = index >= 0;
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        absl::StrAppend(out_, rep ? r->GetRepeatedInt32(m, field, index)
                                  : r->GetInt32(m, field));
        return true;
      case FieldDescriptor::CPPTYPE_UINT32:
        absl::StrAppend(out_, rep ? r->GetRepeatedUInt32(m, field, index)
                                  : r->GetUInt32(m, field));
        return true;
      case FieldDescriptor::CPPTYPE_INT64:
        Int64(rep ? r->GetRepeatedInt64(m, field, index)
                  : r->GetInt64(m, field));
        return true;
      case FieldDescriptor::CPPTYPE_UINT64:
        Int64(rep ? r->GetRepeatedUInt64(m, field, index)
                  : r->GetUInt64(m, field));
        return true;
      case FieldDescriptor::CPPTYPE_DOUBLE: {
        const double v = rep ? r->GetRepeatedDouble(m, field, index)
                             : r->GetDouble(m, field);
        if (!NonFinite(v)) Number(google::protobuf::SimpleDtoa(v));
        return true;
      }
      case FieldDescriptor::CPPTYPE_FLOAT: {
        const float v =
            rep ? r->GetRepeatedFloat(m, field, index) : r->GetFloat(m, field);
        if (!NonFinite(v)) Number(google::protobuf::SimpleFtoa(v));
        return true;
      }
      case FieldDescriptor::CPPTYPE_BOOL: {
        const bool v =
            rep ? r->GetRepeatedBool(m, field, index) : r->GetBool(m, field);
        out_->append(v ? "true" : "false");
        return true;
      }
      case FieldDescriptor::CPPTYPE_ENUM: {
        const int v = rep ? r->GetRepeatedEnumValue(m, field, index)
                          : r->GetEnumValue(m, field);
        // By name (the first one declared for the number); a number the
        // enum does not know prints as a number.
        const EnumValueDescriptor* e = field->enum_type()->FindValueByNumber(v);
        if (e == nullptr) {
          absl::StrAppend(out_, v);
          return true;
        }
        bool ok = true;
        AppendString(e->name(), &ok);
        return ok;
      }
      case FieldDescriptor::CPPTYPE_STRING: {
        std::string scratch;
        const std::string& v =
            rep ? r->GetRepeatedStringReference(m, field, index, &scratch)
                : r->GetStringReference(m, field, &scratch);
        if (field->type() == FieldDescriptor::TYPE_BYTES) {
          std::string base64;
          google::protobuf::Base64Escape(v, &base64);
          out_->push_back('"');
          out_->append(base64);
          out_->push_back('"');
          return true;
        }
        bool ok = true;
        AppendString(v, &ok);
        return ok;
      }
      case FieldDescriptor::CPPTYPE_MESSAGE:
        break;
    }
    return false;
  }

  void AppendString(absl::string_view s, bool* ok) {
    if (nlohmann()) {
      AppendNlohmannString(s, out_, ok);
    } else {
      AppendProtobufString(s, out_, ok);
    }
  }

  const JsonPrintStyle style_;
  std::string* const out_;
};

}  // namespace

bool PrintJson(const Message& message, JsonPrintStyle style, std::string* out) {
  Printer printer(style, out);
  return printer.PrintMessage(message, 0);
}

}  // namespace chat::gateway
