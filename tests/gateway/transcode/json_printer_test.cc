// The one-pass printer against the reference (protobuf's JSON printer plus
// the nlohmann rewrite of 64-bit integers), byte for byte: every message
// type the services' RPCs reach, filled at random (seeded) with values
// chosen to hit escaping, number formatting and presence rules, and a
// synthetic proto3 file for what the API does not use yet (every scalar
// type, bytes, enums with aliases and unknown numbers, oneofs, fields
// declared out of number order) and for what must fall back (maps,
// well-known types, proto2, invalid UTF-8).

#include "gateway/transcode/json_printer.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "chat/admin/v1/admin.pb.h"
#include "chat/v1/chat.pb.h"
#include "gateway/transcode/transcoder.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/stubs/logging.h"
#include "google/protobuf/text_format.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"

namespace chat::gateway {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// Code points the two escapers treat specially, and ordinary ones.
const std::vector<uint32_t>& InterestingCodePoints() {
  static const std::vector<uint32_t>* const cps = new std::vector<uint32_t>{
      0x00,    0x01,    0x07,    0x08,    0x09,    0x0a,    0x0b,    0x0c,
      0x0d,    0x1f,    0x20,    '"',     '\\',    '/',     '<',     '>',
      '&',     '\'',    '=',     0x7e,    0x7f,    0x80,    0x85,    0x9f,
      0xa0,    0xad,    0xe9,    0x600,   0x603,   0x604,   0x6dd,   0x70f,
      0x17b4,  0x17b5,  0x200a,  0x200b,  0x200f,  0x2010,  0x2027,  0x2028,
      0x2029,  0x202e,  0x202f,  0x205f,  0x2060,  0x2064,  0x2065,  0x206a,
      0x206f,  0x4e2d,  0xd7ff,  0xe000,  0xfeff,  0xfff8,  0xfff9,  0xfffb,
      0xfffc,  0xfffd,  0xffff,  0x10000, 0x1d172, 0x1d173, 0x1d17a, 0x1d17b,
      0x1f600, 0xe0000, 0xe0001, 0xe001f, 0xe0020, 0xe007f, 0xe0080, 0x10ffff};
  return *cps;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

// Fills messages through reflection with seeded random values.
class Filler {
 public:
  explicit Filler(uint32_t seed) : rng_(seed) {}

  void Fill(Message* m, int depth) {
    const Descriptor* type = m->GetDescriptor();
    const Reflection* r = m->GetReflection();
    for (int i = 0; i < type->field_count(); ++i) {
      const FieldDescriptor* field = type->field(i);
      // Leave about a third of the fields unset (defaults, absent
      // optionals and messages); a oneof keeps the last member set.
      if (Pick(3) == 0) continue;
      if (field->is_map()) {
        const int n = static_cast<int>(Pick(3));
        for (int k = 0; k < n; ++k) {
          Message* entry = r->AddMessage(m, field);
          Fill(entry, depth + 1);
        }
        continue;
      }
      if (field->is_repeated()) {
        const int n = static_cast<int>(Pick(4));
        for (int k = 0; k < n; ++k) Add(m, field, depth);
        continue;
      }
      Set(m, field, depth);
    }
  }

  std::string String() {
    std::string s;
    switch (Pick(6)) {
      case 0:
        return s;
      case 1:
        return "plain ascii text";
      default:
        break;
    }
    const int n = static_cast<int>(Pick(12)) + 1;
    const auto& cps = InterestingCodePoints();
    for (int k = 0; k < n; ++k) {
      if (Pick(3) == 0) {
        s.push_back(static_cast<char>('a' + Pick(26)));
      } else if (Pick(8) == 0) {
        // Any scalar value outside the surrogates.
        uint32_t cp = static_cast<uint32_t>(Pick(0x110000));
        if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x263a;
        AppendUtf8(cp, &s);
      } else {
        AppendUtf8(cps[Pick(cps.size())], &s);
      }
    }
    return s;
  }

  std::string Bytes() {
    std::string s(Pick(8), '\0');
    for (char& c : s) c = static_cast<char>(Pick(256));
    return s;
  }

  double Double() {
    static const double kValues[] = {
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.1,
        0.30000000000000004,
        1.5,
        123456789012345.0,
        1234567890123456.0,
        12345678901234567.0,
        1e15,
        1e16,
        1e17,
        1e21,
        1e22,
        1e100,
        -1e-5,
        1e-4,
        1e-7,
        5e-324,
        2.2250738585072014e-308,
        std::numeric_limits<double>::max(),
        std::numeric_limits<double>::lowest(),
        std::numeric_limits<double>::quiet_NaN(),
        std::numeric_limits<double>::infinity(),
        -std::numeric_limits<double>::infinity(),
        0.000123,
        2.5e-5,
        9007199254740993.0,
        0.015,
        3.14159,
    };
    switch (Pick(3)) {
      case 0:
        return kValues[Pick(sizeof(kValues) / sizeof(kValues[0]))];
      case 1: {
        // Any bit pattern: subnormals, NaN payloads, everything.
        uint64_t bits = rng_();
        double d;
        std::memcpy(&d, &bits, sizeof(d));
        return d;
      }
      default:
        return std::uniform_real_distribution<double>(-1e6, 1e6)(rng_) /
               std::pow(10.0, static_cast<double>(Pick(12)));
    }
  }

  float Float() {
    if (Pick(2) == 0) return static_cast<float>(Double());
    uint32_t bits = static_cast<uint32_t>(rng_());
    float f;
    std::memcpy(&f, &bits, sizeof(f));
    return f;
  }

  int64_t Int64() {
    static const int64_t kValues[] = {0,
                                      1,
                                      -1,
                                      42,
                                      std::numeric_limits<int64_t>::max(),
                                      std::numeric_limits<int64_t>::min(),
                                      std::numeric_limits<int32_t>::max(),
                                      std::numeric_limits<int32_t>::min(),
                                      int64_t{1} << 53,
                                      (int64_t{1} << 53) + 1};
    if (Pick(2) == 0) return kValues[Pick(10)];
    return static_cast<int64_t>(rng_()) >> Pick(64);
  }

 private:
  uint64_t Pick(uint64_t n) {
    return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_);
  }

  int EnumNumber(const FieldDescriptor* field) {
    const auto* e = field->enum_type();
    if (Pick(5) == 0) return static_cast<int>(Pick(20)) - 5;  // Maybe unknown.
    return e->value(static_cast<int>(Pick(e->value_count())))->number();
  }

  void Set(Message* m, const FieldDescriptor* f, int depth) {
    const Reflection* r = m->GetReflection();
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        r->SetInt32(m, f, static_cast<int32_t>(Int64()));
        break;
      case FieldDescriptor::CPPTYPE_INT64:
        r->SetInt64(m, f, Int64());
        break;
      case FieldDescriptor::CPPTYPE_UINT32:
        r->SetUInt32(m, f, static_cast<uint32_t>(Int64()));
        break;
      case FieldDescriptor::CPPTYPE_UINT64:
        r->SetUInt64(m, f, static_cast<uint64_t>(Int64()));
        break;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        r->SetDouble(m, f, Double());
        break;
      case FieldDescriptor::CPPTYPE_FLOAT:
        r->SetFloat(m, f, Float());
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        r->SetBool(m, f, Pick(2) == 1);
        break;
      case FieldDescriptor::CPPTYPE_ENUM:
        r->SetEnumValue(m, f, EnumNumber(f));
        break;
      case FieldDescriptor::CPPTYPE_STRING:
        r->SetString(
            m, f,
            f->type() == FieldDescriptor::TYPE_BYTES ? Bytes() : String());
        break;
      case FieldDescriptor::CPPTYPE_MESSAGE:
        if (depth < 4) {
          Fill(r->MutableMessage(m, f), depth + 1);
        }
        break;
    }
  }

  void Add(Message* m, const FieldDescriptor* f, int depth) {
    const Reflection* r = m->GetReflection();
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        r->AddInt32(m, f, static_cast<int32_t>(Int64()));
        break;
      case FieldDescriptor::CPPTYPE_INT64:
        r->AddInt64(m, f, Int64());
        break;
      case FieldDescriptor::CPPTYPE_UINT32:
        r->AddUInt32(m, f, static_cast<uint32_t>(Int64()));
        break;
      case FieldDescriptor::CPPTYPE_UINT64:
        r->AddUInt64(m, f, static_cast<uint64_t>(Int64()));
        break;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        r->AddDouble(m, f, Double());
        break;
      case FieldDescriptor::CPPTYPE_FLOAT:
        r->AddFloat(m, f, Float());
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        r->AddBool(m, f, Pick(2) == 1);
        break;
      case FieldDescriptor::CPPTYPE_ENUM:
        r->AddEnumValue(m, f, EnumNumber(f));
        break;
      case FieldDescriptor::CPPTYPE_STRING:
        r->AddString(
            m, f,
            f->type() == FieldDescriptor::TYPE_BYTES ? Bytes() : String());
        break;
      case FieldDescriptor::CPPTYPE_MESSAGE: {
        Message* child = r->AddMessage(m, f);
        if (depth < 4) Fill(child, depth + 1);
        break;
      }
    }
  }

  std::mt19937_64 rng_;
};

void CollectTypes(const Descriptor* type, std::set<const Descriptor*>* out) {
  if (!out->insert(type).second) return;
  for (int i = 0; i < type->field_count(); ++i) {
    if (type->field(i)->message_type() != nullptr) {
      CollectTypes(type->field(i)->message_type(), out);
    }
  }
}

// Every message type an RPC of the two services takes or returns, and
// everything inside them.
std::set<const Descriptor*> ApiTypes() {
  std::set<const Descriptor*> types;
  for (const google::protobuf::ServiceDescriptor* service :
       {chat::v1::ChatRequest::descriptor()->file()->FindServiceByName(
            "ChatService"),
        chat::admin::v1::KeyLimits::descriptor()->file()->FindServiceByName(
            "AdminService")}) {
    for (int i = 0; i < service->method_count(); ++i) {
      CollectTypes(service->method(i)->input_type(), &types);
      CollectTypes(service->method(i)->output_type(), &types);
    }
  }
  return types;
}

// Compares the printers on `message`; `fast` says whether the one-pass
// printer is expected to take it (rather than fall back).
void ExpectSame(const Message& message, bool fast) {
  const std::string reference = MessageToJsonViaProtobuf(message);
  EXPECT_EQ(MessageToJson(message), reference)
      << message.GetDescriptor()->full_name() << ": "
      << message.ShortDebugString();
  std::string out;
  EXPECT_EQ(PrintJson(message, JsonPrintStyle::kProtobuf, &out), fast)
      << message.GetDescriptor()->full_name();
}

TEST(JsonPrinterTest, MatchesTheReferenceOnEveryApiType) {
  const std::set<const Descriptor*> types = ApiTypes();
  ASSERT_GE(types.size(), 30u);
  int compared = 0;
  for (const Descriptor* type : types) {
    const Message* prototype =
        google::protobuf::MessageFactory::generated_factory()->GetPrototype(
            type);
    ASSERT_NE(prototype, nullptr) << type->full_name();
    // The empty message: every default printed.
    ExpectSame(*prototype, true);
    Filler filler(/*seed=*/static_cast<uint32_t>(type->index() + 7));
    for (int i = 0; i < 1500; ++i) {
      std::unique_ptr<Message> m(prototype->New());
      filler.Fill(m.get(), 0);
      ExpectSame(*m, true);
      ++compared;
      if (HasFailure()) return;  // One readable failure, not thousands.
    }
  }
  EXPECT_GT(compared, 0);
}

TEST(JsonPrinterTest, KnownShapes) {
  chat::v1::ChatResponse response;
  EXPECT_EQ(MessageToJson(response),
            R"({"response":"","session_id":"","timestamp":"","turn_count":0,)"
            R"("model":"","stop_reason":"","truncated_turns":0})");
  response.set_cost_usd(-0.0);
  response.set_response("<a href=\"x\">&\u2028</a>\x01");
  response.mutable_usage();
  EXPECT_EQ(MessageToJson(response), MessageToJsonViaProtobuf(response));
  EXPECT_NE(MessageToJson(response).find(R"(\u003ca href=\"x\"\u003e&\u2028)"),
            std::string::npos)
      << MessageToJson(response);

  chat::v1::GetStatsResponse stats;
  stats.set_total_sessions(std::numeric_limits<int64_t>::min());
  stats.set_avg_messages_per_session(1e-7);
  stats.set_total_cost_usd(std::nan(""));
  EXPECT_EQ(MessageToJson(stats),
            R"({"total_sessions":-9223372036854775808,"total_messages":0,)"
            R"("avg_messages_per_session":1e-07,"total_input_tokens":0,)"
            R"("total_output_tokens":0,"total_cost_usd":"NaN"})");
  EXPECT_EQ(MessageToJson(stats), MessageToJsonViaProtobuf(stats));

  chat::v1::ChatStreamResponse event;
  event.mutable_delta()->set_text("tok\n\"en\" \u2029 <b>");
  EXPECT_EQ(MessageToJson(event), MessageToJsonViaProtobuf(event));
}

TEST(JsonPrinterTest, InvalidUtf8FallsBack) {
  // The reference logs each invalid string it serializes.
  google::protobuf::LogSilencer quiet;
  for (const char* bad : {"\xff", "a\x80z", "\xc0\x80", "\xed\xa0\x80",
                          "\xf4\x90\x80\x80", "\xe2\x82", "ok\xc3"}) {
    chat::v1::ChatDelta delta;
    delta.set_text(bad);
    std::string out;
    EXPECT_FALSE(PrintJson(delta, JsonPrintStyle::kProtobuf, &out));
    EXPECT_EQ(MessageToJson(delta), MessageToJsonViaProtobuf(delta));
    chat::admin::v1::Usage usage;
    usage.set_tenant(bad);
    EXPECT_FALSE(
        PrintJson(usage, JsonPrintStyle::kNlohmannInt64AsNumbers, &out));
    EXPECT_EQ(MessageToJson(usage), MessageToJsonViaProtobuf(usage));
  }
}

TEST(JsonPrinterTest, WellKnownTypesFallBack) {
  google::rpc::Status status;
  status.set_code(3);
  status.set_message("bad <input>");
  google::rpc::RetryInfo retry;
  retry.mutable_retry_delay()->set_seconds(5);
  status.add_details()->PackFrom(retry);
  std::string out;
  EXPECT_FALSE(PrintJson(status, JsonPrintStyle::kProtobuf, &out));
  EXPECT_EQ(MessageToJson(status), MessageToJsonViaProtobuf(status));
  EXPECT_FALSE(PrintJson(retry, JsonPrintStyle::kProtobuf, &out));
  EXPECT_EQ(MessageToJson(retry), MessageToJsonViaProtobuf(retry));
  // Without a well-known type set, Status prints on the fast path.
  google::rpc::Status plain;
  plain.set_message("x");
  EXPECT_TRUE(PrintJson(plain, JsonPrintStyle::kProtobuf, &out));
  EXPECT_EQ(MessageToJson(plain), MessageToJsonViaProtobuf(plain));
}

// A proto3 file with what the API does not use (yet), built at run time.
constexpr char kSyntheticFile[] = R"pb(
  name: "synthetic.proto"
  package: "synthetic"
  syntax: "proto3"
  dependency: "google/protobuf/timestamp.proto"
  enum_type {
    name: "Color"
    options { allow_alias: true }
    value { name: "COLOR_UNSPECIFIED" number: 0 }
    value { name: "RED" number: 1 }
    value { name: "CRIMSON" number: 1 }
    value { name: "BLUE" number: -2 }
  }
  message_type {
    name: "Inner"
    field { name: "z_last" number: 3 type: TYPE_STRING label: LABEL_OPTIONAL }
    field { name: "a_first" number: 1 type: TYPE_SINT32 label: LABEL_OPTIONAL }
    field {
      name: "color"
      number: 2
      type: TYPE_ENUM
      type_name: ".synthetic.Color"
      label: LABEL_OPTIONAL
    }
  }
  message_type {
    name: "All"
    field {
      name: "f_double"
      number: 20
      type: TYPE_DOUBLE
      label: LABEL_OPTIONAL
    }
    field { name: "f_float" number: 2 type: TYPE_FLOAT label: LABEL_OPTIONAL }
    field { name: "f_int32" number: 3 type: TYPE_INT32 label: LABEL_OPTIONAL }
    field { name: "f_uint32" number: 4 type: TYPE_UINT32 label: LABEL_OPTIONAL }
    field { name: "f_sint32" number: 5 type: TYPE_SINT32 label: LABEL_OPTIONAL }
    field {
      name: "f_fixed32"
      number: 6
      type: TYPE_FIXED32
      label: LABEL_OPTIONAL
    }
    field {
      name: "f_sfixed32"
      number: 7
      type: TYPE_SFIXED32
      label: LABEL_OPTIONAL
    }
    field { name: "f_bool" number: 8 type: TYPE_BOOL label: LABEL_OPTIONAL }
    field { name: "f_string" number: 9 type: TYPE_STRING label: LABEL_OPTIONAL }
    field { name: "f_bytes" number: 10 type: TYPE_BYTES label: LABEL_OPTIONAL }
    field {
      name: "f_color"
      number: 11
      type: TYPE_ENUM
      type_name: ".synthetic.Color"
      label: LABEL_OPTIONAL
    }
    field {
      name: "f_inner"
      number: 12
      type: TYPE_MESSAGE
      type_name: ".synthetic.Inner"
      label: LABEL_OPTIONAL
    }
    field {
      name: "r_double"
      number: 13
      type: TYPE_DOUBLE
      label: LABEL_REPEATED
    }
    field { name: "r_float" number: 14 type: TYPE_FLOAT label: LABEL_REPEATED }
    field {
      name: "r_uint32"
      number: 15
      type: TYPE_UINT32
      label: LABEL_REPEATED
    }
    field { name: "r_bool" number: 16 type: TYPE_BOOL label: LABEL_REPEATED }
    field {
      name: "r_string"
      number: 17
      type: TYPE_STRING
      label: LABEL_REPEATED
    }
    field { name: "r_bytes" number: 18 type: TYPE_BYTES label: LABEL_REPEATED }
    field {
      name: "r_color"
      number: 19
      type: TYPE_ENUM
      type_name: ".synthetic.Color"
      label: LABEL_REPEATED
    }
    field {
      name: "r_inner"
      number: 1
      type: TYPE_MESSAGE
      type_name: ".synthetic.Inner"
      label: LABEL_REPEATED
    }
    field {
      name: "o_string"
      number: 30
      type: TYPE_STRING
      label: LABEL_OPTIONAL
      oneof_index: 0
    }
    field {
      name: "o_inner"
      number: 31
      type: TYPE_MESSAGE
      type_name: ".synthetic.Inner"
      label: LABEL_OPTIONAL
      oneof_index: 0
    }
    field {
      name: "o_double"
      number: 29
      type: TYPE_DOUBLE
      label: LABEL_OPTIONAL
      oneof_index: 0
    }
    field {
      name: "p_int32"
      number: 41
      type: TYPE_INT32
      label: LABEL_OPTIONAL
      oneof_index: 1
      proto3_optional: true
    }
    field {
      name: "p_color"
      number: 40
      type: TYPE_ENUM
      type_name: ".synthetic.Color"
      label: LABEL_OPTIONAL
      oneof_index: 2
      proto3_optional: true
    }
    field {
      name: "p_inner"
      number: 42
      type: TYPE_MESSAGE
      type_name: ".synthetic.Inner"
      label: LABEL_OPTIONAL
      oneof_index: 3
      proto3_optional: true
    }
    field {
      name: "mid_scalar"
      number: 35
      type: TYPE_BOOL
      label: LABEL_OPTIONAL
    }
    oneof_decl { name: "choice" }
    oneof_decl { name: "_p_int32" }
    oneof_decl { name: "_p_color" }
    oneof_decl { name: "_p_inner" }
  }
  message_type {
    name: "With64"
    field {
      name: "all"
      number: 1
      type: TYPE_MESSAGE
      type_name: ".synthetic.All"
      label: LABEL_OPTIONAL
    }
    field { name: "n" number: 2 type: TYPE_INT64 label: LABEL_OPTIONAL }
    field { name: "u" number: 3 type: TYPE_UINT64 label: LABEL_OPTIONAL }
    field { name: "s" number: 4 type: TYPE_SINT64 label: LABEL_OPTIONAL }
    field { name: "f" number: 5 type: TYPE_FIXED64 label: LABEL_OPTIONAL }
    field { name: "sf" number: 6 type: TYPE_SFIXED64 label: LABEL_REPEATED }
    field { name: "ru" number: 7 type: TYPE_UINT64 label: LABEL_REPEATED }
    field {
      name: "on"
      number: 8
      type: TYPE_INT64
      label: LABEL_OPTIONAL
      oneof_index: 0
      proto3_optional: true
    }
    oneof_decl { name: "_on" }
  }
  message_type {
    name: "WithMap"
    field {
      name: "m"
      number: 1
      type: TYPE_MESSAGE
      type_name: ".synthetic.WithMap.MEntry"
      label: LABEL_REPEATED
    }
    nested_type {
      name: "MEntry"
      field { name: "key" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL }
      field { name: "value" number: 2 type: TYPE_INT64 label: LABEL_OPTIONAL }
      options { map_entry: true }
    }
  }
  message_type {
    name: "WithTimestamp"
    field {
      name: "at"
      number: 1
      type: TYPE_MESSAGE
      type_name: ".google.protobuf.Timestamp"
      label: LABEL_OPTIONAL
    }
    field { name: "x" number: 2 type: TYPE_STRING label: LABEL_OPTIONAL }
  }
)pb";

class SyntheticTest : public ::testing::Test {
 protected:
  void SetUp() override {
    google::protobuf::FileDescriptorProto proto;
    ASSERT_TRUE(
        google::protobuf::TextFormat::ParseFromString(kSyntheticFile, &proto));
    file_ = pool_.BuildFile(proto);
    ASSERT_NE(file_, nullptr);
  }

  std::unique_ptr<Message> New(const char* name) {
    const Descriptor* type = file_->FindMessageTypeByName(name);
    return std::unique_ptr<Message>(factory_.GetPrototype(type)->New());
  }

  // The underlay supplies google/protobuf/timestamp.proto.
  google::protobuf::DescriptorPool pool_{
      google::protobuf::DescriptorPool::generated_pool()};
  google::protobuf::DynamicMessageFactory factory_{&pool_};
  const google::protobuf::FileDescriptor* file_ = nullptr;
};

TEST_F(SyntheticTest, EveryScalarTypeOneofsAndDeclarationOrder) {
  for (const char* name : {"All", "With64", "Inner"}) {
    ExpectSame(*New(name), true);
    Filler filler(/*seed=*/42);
    for (int i = 0; i < 3000; ++i) {
      std::unique_ptr<Message> m = New(name);
      filler.Fill(m.get(), 0);
      ExpectSame(*m, true);
      if (HasFailure()) return;
    }
  }
}

TEST_F(SyntheticTest, MapsAndWellKnownTypesFallBack) {
  Filler filler(/*seed=*/3);
  for (const char* name : {"WithMap", "WithTimestamp"}) {
    for (int i = 0; i < 50; ++i) {
      std::unique_ptr<Message> m = New(name);
      filler.Fill(m.get(), 0);
      EXPECT_EQ(MessageToJson(*m), MessageToJsonViaProtobuf(*m));
    }
  }
  std::unique_ptr<Message> m = New("WithMap");
  std::string out;
  EXPECT_FALSE(PrintJson(*m, JsonPrintStyle::kProtobuf, &out));
}

}  // namespace
}  // namespace chat::gateway
