#include "gateway/transcode/transcoder.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gateway/transcode/flat_json.h"
#include "gateway/transcode/json_printer.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/stubs/common.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"

namespace chat::gateway {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;
using Json = nlohmann::ordered_json;

// A SAX consumer that accepts everything and records the first syntax
// error, so malformed JSON is reported with its position without
// exceptions (nlohmann's sax_parse hands errors to the consumer).
class SyntaxChecker final : public nlohmann::json_sax<Json> {
 public:
  bool null() override { return Value(); }
  bool boolean(bool) override { return Value(); }
  bool number_integer(number_integer_t) override { return Value(); }
  bool number_unsigned(number_unsigned_t) override { return Value(); }
  bool number_float(number_float_t, const string_t&) override {
    return Value();
  }
  bool string(string_t&) override { return Value(); }
  bool binary(binary_t&) override { return Value(); }
  bool start_object(std::size_t) override {
    if (depth_ == 0) top_is_object_ = true;
    ++depth_;
    return true;
  }
  bool key(string_t&) override { return true; }
  bool end_object() override {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    ++depth_;
    return true;
  }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool parse_error(std::size_t position, const std::string& last_token,
                   const nlohmann::detail::exception& ex) override {
    // ex.what() reads "[json.exception.parse_error.101] parse error at line
    // 1, column 12: syntax error while parsing object key - ..."; keep the
    // part after the tag.
    std::string what = ex.what();
    size_t tag_end = what.find("] ");
    error_ = tag_end == std::string::npos ? what : what.substr(tag_end + 2);
    position_ = position;
    (void)last_token;
    return false;
  }

  bool top_is_object() const { return top_is_object_; }
  const std::string& error() const { return error_; }

 private:
  bool Value() { return true; }
  int depth_ = 0;
  bool top_is_object_ = false;
  std::string error_;
  size_t position_ = 0;
};

const FieldDescriptor* FindField(const Descriptor* type,
                                 absl::string_view name) {
  const FieldDescriptor* field = type->FindFieldByName(std::string(name));
  if (field == nullptr)
    field = type->FindFieldByCamelcaseName(std::string(name));
  return field;
}

bool Is64Bit(const FieldDescriptor* field) {
  return field->cpp_type() == FieldDescriptor::CPPTYPE_INT64 ||
         field->cpp_type() == FieldDescriptor::CPPTYPE_UINT64;
}

// Turns a 64-bit integer that proto3 JSON printed as "123" back into 123.
void StringToNumber(Json* value, const FieldDescriptor* field) {
  if (!value->is_string()) return;
  const std::string& text = value->get_ref<const std::string&>();
  if (field->cpp_type() == FieldDescriptor::CPPTYPE_INT64) {
    int64_t n = 0;
    if (absl::SimpleAtoi(text, &n)) *value = n;
  } else {
    uint64_t n = 0;
    if (absl::SimpleAtoi(text, &n)) *value = n;
  }
}

// Walks `json` (printed from a message of `type`) and converts every 64-bit
// integer field, at any depth, to a number.
void FixInt64(Json* json, const Descriptor* type) {
  if (!json->is_object()) return;
  // Well-known types have their own JSON forms (Timestamp, Duration...).
  if (type->file()->package() == "google.protobuf") return;
  for (int i = 0; i < type->field_count(); ++i) {
    const FieldDescriptor* field = type->field(i);
    auto it = json->find(field->name());
    if (it == json->end()) continue;
    if (field->is_map()) {
      const FieldDescriptor* value_field = field->message_type()->map_value();
      if (!it->is_object()) continue;
      for (auto& [key, v] : it->items()) {
        if (Is64Bit(value_field)) StringToNumber(&v, value_field);
        if (value_field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
          FixInt64(&v, value_field->message_type());
        }
      }
      continue;
    }
    auto fix_one = [&](Json* v) {
      if (Is64Bit(field)) StringToNumber(v, field);
      if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        FixInt64(v, field->message_type());
      }
    };
    if (field->is_repeated()) {
      if (!it->is_array()) continue;
      for (Json& v : *it) fix_one(&v);
    } else {
      fix_one(&*it);
    }
  }
}

bool Has64BitField(const Descriptor* type, int depth = 0) {
  if (depth > 32) return false;  // Recursive types: give up, the walk is safe.
  for (int i = 0; i < type->field_count(); ++i) {
    const FieldDescriptor* field = type->field(i);
    if (Is64Bit(field)) return true;
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
        Has64BitField(field->message_type(), depth + 1)) {
      return true;
    }
  }
  return false;
}

absl::Status InvalidValue(const FieldDescriptor* field,
                          absl::string_view value) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid value \"", value, "\" for field ", field->name(),
                   " (", field->type_name(), ")"));
}

}  // namespace

absl::Status CheckJsonObject(absl::string_view text) {
  SyntaxChecker checker;
  bool ok = Json::sax_parse(text.begin(), text.end(), &checker,
                            nlohmann::detail::input_format_t::json,
                            /*strict=*/true);
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed JSON body: ", checker.error()));
  }
  if (!checker.top_is_object()) {
    return absl::InvalidArgumentError("the JSON body must be an object");
  }
  return absl::OkStatus();
}

absl::Status SetFieldFromString(Message* message, absl::string_view field_path,
                                absl::string_view value) {
  std::vector<absl::string_view> parts = absl::StrSplit(field_path, '.');
  Message* target = message;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    const FieldDescriptor* field = FindField(target->GetDescriptor(), parts[i]);
    if (field == nullptr ||
        field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE ||
        field->is_repeated()) {
      return absl::InvalidArgumentError(
          absl::StrCat("no message field ", parts[i], " in ", field_path));
    }
    target = target->GetReflection()->MutableMessage(target, field);
  }
  const FieldDescriptor* field =
      FindField(target->GetDescriptor(), parts.back());
  if (field == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("no field ", field_path));
  }
  const Reflection* r = target->GetReflection();
  const bool rep = field->is_repeated();
  std::string text(value);
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      if (field->type() == FieldDescriptor::TYPE_BYTES) {
        return absl::InvalidArgumentError(
            absl::StrCat("field ", field->name(), " cannot be set from a URL"));
      }
      // A proto3 string must be UTF-8; %-decoding can produce any bytes.
      if (!google::protobuf::internal::IsStructurallyValidUTF8(
              text.data(), static_cast<int>(text.size()))) {
        return absl::InvalidArgumentError(
            absl::StrCat("field ", field->name(), " is not valid UTF-8"));
      }
      rep ? r->AddString(target, field, text)
          : r->SetString(target, field, text);
      return absl::OkStatus();
    case FieldDescriptor::CPPTYPE_INT32: {
      int32_t n;
      if (!absl::SimpleAtoi(text, &n)) return InvalidValue(field, value);
      rep ? r->AddInt32(target, field, n) : r->SetInt32(target, field, n);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      int64_t n;
      if (!absl::SimpleAtoi(text, &n)) return InvalidValue(field, value);
      rep ? r->AddInt64(target, field, n) : r->SetInt64(target, field, n);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT32: {
      uint32_t n;
      if (!absl::SimpleAtoi(text, &n)) return InvalidValue(field, value);
      rep ? r->AddUInt32(target, field, n) : r->SetUInt32(target, field, n);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT64: {
      uint64_t n;
      if (!absl::SimpleAtoi(text, &n)) return InvalidValue(field, value);
      rep ? r->AddUInt64(target, field, n) : r->SetUInt64(target, field, n);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_DOUBLE: {
      double n;
      if (!absl::SimpleAtod(text, &n)) return InvalidValue(field, value);
      rep ? r->AddDouble(target, field, n) : r->SetDouble(target, field, n);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_FLOAT: {
      float n;
      if (!absl::SimpleAtof(text, &n)) return InvalidValue(field, value);
      rep ? r->AddFloat(target, field, n) : r->SetFloat(target, field, n);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_BOOL: {
      bool b;
      if (!absl::SimpleAtob(text, &b)) return InvalidValue(field, value);
      rep ? r->AddBool(target, field, b) : r->SetBool(target, field, b);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      const google::protobuf::EnumValueDescriptor* e =
          field->enum_type()->FindValueByName(text);
      int n = 0;
      if (e == nullptr && absl::SimpleAtoi(text, &n)) {
        e = field->enum_type()->FindValueByNumber(n);
      }
      if (e == nullptr) return InvalidValue(field, value);
      rep ? r->AddEnum(target, field, e) : r->SetEnum(target, field, e);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return absl::InvalidArgumentError(absl::StrCat(
          "field ", field->name(), " is a message; name one of its fields"));
  }
  return absl::InvalidArgumentError("unsupported field type");
}

absl::StatusOr<std::unique_ptr<Message>> BuildRequest(
    const Descriptor* request_type, absl::string_view body_field,
    absl::string_view body, const std::vector<Binding>& path_bindings,
    const std::vector<Binding>& query) {
  const Message* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(
          request_type);
  if (prototype == nullptr) {
    return absl::InternalError(
        absl::StrCat("no generated type for ", request_type->full_name()));
  }
  std::unique_ptr<Message> message(prototype->New());

  const bool body_is_blank =
      body.find_first_not_of(" \t\r\n") == absl::string_view::npos;
  // The usual body, a flat object of scalars, is read in one pass;
  // anything else (and every error) through protobuf's parser.
  const bool read_flat = body_field == "*" && !body_is_blank &&
                         ReadFlatJsonObject(body, message.get());
  if (!read_flat && body_field == "*") message->Clear();
  if (!body_field.empty() && !body_is_blank && !read_flat) {
    if (absl::Status s = CheckJsonObject(body); !s.ok()) return s;
    std::string json;
    if (body_field == "*") {
      json = std::string(body);
    } else {
      const FieldDescriptor* field = FindField(request_type, body_field);
      if (field == nullptr) {
        return absl::InternalError(absl::StrCat("annotation body field ",
                                                body_field, " does not exist"));
      }
      json = absl::StrCat("{\"", field->name(), "\":", body, "}");
    }
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = true;
    auto status = google::protobuf::util::JsonStringToMessage(
        json, message.get(), options);
    if (!status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid JSON body: ", status.message().as_string()));
    }
  }
  if (body_field != "*") {
    for (const Binding& param : query) {
      // Parameters that name no field are ignored, as unknown JSON fields
      // are; a field that exists must get a valid value.
      std::vector<absl::string_view> parts = absl::StrSplit(param.first, '.');
      const Descriptor* type = request_type;
      const FieldDescriptor* field = nullptr;
      for (absl::string_view part : parts) {
        field = type == nullptr ? nullptr : FindField(type, part);
        if (field == nullptr) break;
        type = field->message_type();
      }
      if (field == nullptr) continue;
      if (absl::Status s =
              SetFieldFromString(message.get(), param.first, param.second);
          !s.ok()) {
        return s;
      }
    }
  }
  // Path variables go last, so they win: `/history/a?session_id=b` (or a
  // body naming another session) must not reach session b through a route
  // that says a; a proxy's rules on the path stay true.
  for (const Binding& binding : path_bindings) {
    if (absl::Status s =
            SetFieldFromString(message.get(), binding.first, binding.second);
        !s.ok()) {
      return s;
    }
  }
  return message;
}

std::string MessageToJson(const Message& message) {
  // One reflection pass instead of protobuf's binary round trip and, for
  // types with a 64-bit field, nlohmann's parse and dump; same bytes.
  const JsonPrintStyle style = Has64BitField(message.GetDescriptor())
                                   ? JsonPrintStyle::kNlohmannInt64AsNumbers
                                   : JsonPrintStyle::kProtobuf;
  std::string out;
  out.reserve(256);
  if (PrintJson(message, style, &out)) return out;
  return MessageToJsonViaProtobuf(message);
}

std::string MessageToJsonViaProtobuf(const Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  // Printing a valid message cannot fail; a failure is a bug worth seeing.
  auto status =
      google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!status.ok()) return "{}";
  if (!Has64BitField(message.GetDescriptor())) return out;
  Json json = Json::parse(out, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return out;
  FixInt64(&json, message.GetDescriptor());
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

StreamEventParts SplitStreamEvent(const Message& event) {
  StreamEventParts parts;
  const Descriptor* type = event.GetDescriptor();
  const Reflection* r = event.GetReflection();
  const FieldDescriptor* id = type->FindFieldByName("event_id");
  if (id != nullptr && !id->is_repeated() &&
      id->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
    parts.id = r->GetString(event, id);
  }
  if (type->real_oneof_decl_count() == 1) {
    const FieldDescriptor* set =
        r->GetOneofFieldDescriptor(event, type->oneof_decl(0));
    if (set != nullptr && set->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      const Message& payload = r->GetMessage(event, set);
      parts.name = set->name();
      parts.json = MessageToJson(payload);
      const FieldDescriptor* text =
          payload.GetDescriptor()->FindFieldByName("text");
      if (text != nullptr && !text->is_repeated() &&
          text->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
        parts.text = payload.GetReflection()->GetString(payload, text);
        parts.has_text = true;
      }
      return parts;
    }
  }
  parts.name = "message";
  parts.json = MessageToJson(event);
  return parts;
}

}  // namespace chat::gateway
