// ReadFlatJsonObject against protobuf's own JSON parser: whatever the fast
// path accepts, protobuf reads into the same bytes; what it refuses is left
// to protobuf (and its error messages).

#include "gateway/transcode/flat_json.h"

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "chat/v1/chat.pb.h"
#include "gateway/transcode/transcoder.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace chat::gateway {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::Message;

// A message with a field of every kind, built at run time.
class AllKinds {
 public:
  AllKinds() {
    google::protobuf::FileDescriptorProto file;
    const bool parsed = google::protobuf::TextFormat::ParseFromString(
        R"pb(
          name: "flat_json_test.proto"
          package: "flat.test"
          syntax: "proto3"
          enum_type {
            name: "Color"
            value { name: "RED" number: 0 }
            value { name: "BLUE" number: 1 }
          }
          message_type {
            name: "Inner"
            field { name: "x" number: 1 type: TYPE_INT32 label: LABEL_OPTIONAL }
          }
          message_type {
            name: "All"
            field {
              name: "s"
              number: 1
              type: TYPE_STRING
              label: LABEL_OPTIONAL
            }
            field {
              name: "i32"
              number: 2
              type: TYPE_INT32
              label: LABEL_OPTIONAL
            }
            field {
              name: "i64"
              number: 3
              type: TYPE_INT64
              label: LABEL_OPTIONAL
            }
            field {
              name: "u32"
              number: 4
              type: TYPE_UINT32
              label: LABEL_OPTIONAL
            }
            field {
              name: "u64"
              number: 5
              type: TYPE_UINT64
              label: LABEL_OPTIONAL
            }
            field { name: "b" number: 6 type: TYPE_BOOL label: LABEL_OPTIONAL }
            field {
              name: "d"
              number: 7
              type: TYPE_DOUBLE
              label: LABEL_OPTIONAL
            }
            field { name: "f" number: 8 type: TYPE_FLOAT label: LABEL_OPTIONAL }
            field {
              name: "by"
              number: 9
              type: TYPE_BYTES
              label: LABEL_OPTIONAL
            }
            field {
              name: "color"
              number: 10
              type: TYPE_ENUM
              type_name: ".flat.test.Color"
              label: LABEL_OPTIONAL
            }
            field {
              name: "inner"
              number: 11
              type: TYPE_MESSAGE
              type_name: ".flat.test.Inner"
              label: LABEL_OPTIONAL
            }
            field {
              name: "rs"
              number: 12
              type: TYPE_STRING
              label: LABEL_REPEATED
            }
            field {
              name: "one_a"
              number: 13
              type: TYPE_STRING
              label: LABEL_OPTIONAL
              oneof_index: 0
            }
            field {
              name: "opt_s"
              number: 14
              type: TYPE_STRING
              label: LABEL_OPTIONAL
              oneof_index: 1
              proto3_optional: true
            }
            field {
              name: "si64"
              number: 15
              type: TYPE_SINT64
              label: LABEL_OPTIONAL
            }
            field {
              name: "renamed"
              number: 16
              type: TYPE_STRING
              label: LABEL_OPTIONAL
              json_name: "otherName"
            }
            oneof_decl { name: "choice" }
            oneof_decl { name: "_opt_s" }
          }
        )pb",
        &file);
    EXPECT_TRUE(parsed);
    const google::protobuf::FileDescriptor* built = pool_.BuildFile(file);
    EXPECT_NE(built, nullptr);
    type_ = pool_.FindMessageTypeByName("flat.test.All");
  }

  std::unique_ptr<Message> New() {
    return std::unique_ptr<Message>(factory_.GetPrototype(type_)->New());
  }

 private:
  google::protobuf::DescriptorPool pool_;
  google::protobuf::DynamicMessageFactory factory_;
  const Descriptor* type_ = nullptr;
};

AllKinds& All() {
  static AllKinds* const all = new AllKinds;
  return *all;
}

// What the fast path gives, or nullptr when it declines.
std::unique_ptr<Message> Fast(const Message& prototype,
                              absl::string_view body) {
  std::unique_ptr<Message> m(prototype.New());
  if (!ReadFlatJsonObject(body, m.get())) return nullptr;
  return m;
}

// What protobuf's parser (the slow path) gives, or nullptr on an error.
std::unique_ptr<Message> Slow(const Message& prototype,
                              absl::string_view body) {
  if (!CheckJsonObject(body).ok()) return nullptr;
  std::unique_ptr<Message> m(prototype.New());
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(std::string(body), m.get(),
                                                   options)
           .ok()) {
    return nullptr;
  }
  return m;
}

// Both paths agree on `body`; returns whether the fast path took it.
bool Agree(const Message& prototype, absl::string_view body) {
  std::unique_ptr<Message> fast = Fast(prototype, body);
  if (fast == nullptr) return false;
  std::unique_ptr<Message> slow = Slow(prototype, body);
  EXPECT_NE(slow, nullptr) << "the fast path accepted what protobuf refuses: "
                           << body;
  if (slow == nullptr) return true;
  EXPECT_EQ(fast->SerializeAsString(), slow->SerializeAsString())
      << "body: " << body << "\nfast: " << fast->ShortDebugString()
      << "\nslow: " << slow->ShortDebugString();
  return true;
}

TEST(FlatJsonTest, ReadsTheUsualChatBody) {
  chat::v1::ChatRequest request;
  ASSERT_TRUE(ReadFlatJsonObject(
      R"({"message":"Hello there","session_id":"wrk-1-2"})", &request));
  EXPECT_EQ(request.message(), "Hello there");
  EXPECT_EQ(request.session_id(), "wrk-1-2");
  EXPECT_FALSE(request.has_system_prompt());
}

TEST(FlatJsonTest, AgreesWithProtobufOnWhatItAccepts) {
  const chat::v1::ChatRequest chat;
  const std::vector<std::string> accepted = {
      R"({})",
      " \t\r\n{ } \n",
      R"({"message":"hi","sessionId":"s"})",
      R"({"message":"","session_id":"","system_prompt":"","model":""})",
      R"({"message":"q\"b\\s\/n\n\r\t\b\f","session_id":"s"})",
      "{\"message\":\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"}",
      "{\"message\":\"\x7f\"}",
      R"({"max_tokens":0,"maxTokens2":1})",
      R"({"max_tokens":-2147483648})",
      R"({"max_tokens":2147483647,"temperature":0.7})",
      R"({"temperature":1})",
      R"({"temperature":-1.5e-3})",
      R"({"temperature":2E+2})",
      R"({"temperature":123456789012345})",
      R"({ "message" : "a" , "session_id" : "b" })",
      R"({"systemPrompt":"be brief","model":"m@x"})",
  };
  for (const std::string& body : accepted) {
    // Unknown keys (maxTokens2) are declined; the rest must be taken.
    const bool taken = Agree(chat, body);
    EXPECT_EQ(taken, body.find("maxTokens2") == std::string::npos) << body;
  }
}

TEST(FlatJsonTest, DeclinesWhatItDoesNotHandle) {
  const chat::v1::ChatRequest chat;
  const std::vector<std::string> declined = {
      "",
      "[]",
      R"("s")",
      R"({"message":"hi",})",
      R"({"message":"hi"} x)",
      R"({"message":"hi"}{})",
      R"({"message":null})",
      R"({"message":"\u00e9"})",
      R"({"message":"\ud83d\ude00"})",
      R"({"mess\u0061ge":"hi"})",
      "{\"message\":\"a\nb\"}",
      "{\"message\":\"\x01\"}",
      "{\"message\":\"\xff\"}",
      "{\"message\":\"\xc0\xaf\"}",          // Overlong.
      "{\"message\":\"\xed\xa0\x80\"}",      // A surrogate.
      "{\"message\":\"\xf4\x90\x80\x80\"}",  // Past U+10FFFF.
      "{\"message\":\"\xe2\x82\"}",          // Cut short.
      R"({"message":"a","message":"b"})",
      R"({"message":"a","Message":"b"})",
      R"({"session_id":"a","sessionId":"b"})",
      R"({"message":1})",
      R"({"max_tokens":"5"})",
      R"({"max_tokens":5.0})",
      R"({"max_tokens":1e2})",
      R"({"max_tokens":2147483648})",
      R"({"max_tokens":01})",
      R"({"max_tokens":-})",
      R"({"max_tokens":+1})",
      R"({"temperature":0})",
      R"({"temperature":-0})",
      R"({"temperature":0.0})",
      R"({"temperature":1e400})",
      R"({"temperature":1e-400})",
      R"({"temperature":1234567890123456})",
      R"({"temperature":1.})",
      R"({"temperature":.5})",
      R"({"temperature":"NaN"})",
      R"({"unknown":1})",
      "{\"message\":\"hi\"",
      "{\"message\"",
      "{\"message\":\"hi\\",
      "{'message':'hi'}",
      "\xef\xbb\xbf{}",  // A byte-order mark.
      "{\"message\":\"hi\"}\x0b",
  };
  for (const std::string& body : declined) {
    EXPECT_EQ(Fast(chat, body), nullptr) << body;
  }
}

TEST(FlatJsonTest, EveryFieldKindAgreesOrIsDeclined) {
  std::unique_ptr<Message> all = All().New();
  const std::vector<std::pair<std::string, bool>> bodies = {
      {R"({"s":"x","i32":-5,"i64":-9223372036854775808,"u32":4294967295,)"
       R"("u64":18446744073709551615,"b":true,"d":3.25})",
       true},
      {R"({"b":false,"si64":-3})", true},
      {R"({"renamed":"x"})", true},  // The proto name works too.
      {R"({"otherName":"x"})", true},
      {R"({"opt_s":""})", true},
      {R"({"optS":"v"})", true},
      {R"({"i64":9223372036854775808})", false},
      {R"({"u64":18446744073709551616})", false},
      {R"({"u32":-0})", false},
      {R"({"u32":4294967296})", false},
      {R"({"i32":-0})", true},
      {R"({"b":1})", false},
      {R"({"b":"true"})", false},
      {R"({"f":1.5})", false},
      {R"({"by":"AAAA"})", false},
      {R"({"color":"BLUE"})", false},
      {R"({"inner":{"x":1}})", false},
      {R"({"rs":["a"]})", false},
      {R"({"one_a":"a"})", false},
      {R"({"i64":"5"})", false},
  };
  for (const auto& [body, taken] : bodies) {
    EXPECT_EQ(Agree(*all, body), taken) << body;
  }
}

// Bodies put together from pieces, valid and not, each checked both ways.
TEST(FlatJsonTest, RandomBodiesAgree) {
  const chat::v1::ChatRequest chat;
  std::unique_ptr<Message> all = All().New();
  const std::vector<std::string> keys = {
      "\"message\"",    "\"session_id\"",  "\"sessionId\"", "\"model\"",
      "\"max_tokens\"", "\"temperature\"", "\"s\"",         "\"i32\"",
      "\"i64\"",        "\"u32\"",         "\"u64\"",       "\"b\"",
      "\"d\"",          "\"x\"",           "\"otherName\"", "\"si64\"",
      "\"optS\""};
  const std::vector<std::string> values = {"\"\"",
                                           "\"a b\"",
                                           "\"\\n\\\"\"",
                                           "\"\xc3\xa9\"",
                                           "\"\xe2\x82\xac\"",
                                           "\"\\/\"",
                                           "0",
                                           "1",
                                           "-1",
                                           "17",
                                           "2147483647",
                                           "2147483648",
                                           "-2147483649",
                                           "4294967295",
                                           "1.5",
                                           "-2.5e3",
                                           "1E-2",
                                           "true",
                                           "false",
                                           "null",
                                           "123456789012345",
                                           "9007199254740993",
                                           "\"\xc3\"",
                                           "[]",
                                           "{}"};
  const std::vector<std::string> gaps = {"", " ", "\n", "\t "};
  std::mt19937 random(11);
  auto pick = [&](const std::vector<std::string>& from) {
    return from[random() % from.size()];
  };
  int taken = 0;
  for (int i = 0; i < 4000; ++i) {
    std::string body = pick(gaps) + "{";
    const int members = random() % 4;
    for (int m = 0; m < members; ++m) {
      if (m > 0) body += pick(gaps) + ",";
      body += pick(gaps) + pick(keys) + pick(gaps) + ":" + pick(gaps) +
              pick(values);
    }
    body += pick(gaps) + "}" + pick(gaps);
    if (random() % 20 == 0) body.erase(random() % body.size(), 1);
    taken += Agree(chat, body);
    taken += Agree(*all, body);
  }
  EXPECT_GT(taken, 1000);  // The fast path is exercised, not only declined.
}

TEST(FlatJsonTest, BuildRequestGivesTheSameMessageEitherWay) {
  // Through BuildRequest: path variables still win over the body.
  absl::StatusOr<std::unique_ptr<Message>> m = BuildRequest(
      chat::v1::ChatRequest::descriptor(), "*",
      R"({"message":"hi","session_id":"body"})", {{"session_id", "path"}}, {});
  ASSERT_TRUE(m.ok()) << m.status();
  auto* request = dynamic_cast<chat::v1::ChatRequest*>(m->get());
  ASSERT_NE(request, nullptr);
  EXPECT_EQ(request->session_id(), "path");
  EXPECT_EQ(request->message(), "hi");

  // A body the fast path declines halfway leaves nothing of its own behind.
  m = BuildRequest(chat::v1::ChatRequest::descriptor(), "*",
                   R"({"message":"hi","model":null})", {}, {});
  ASSERT_TRUE(m.ok()) << m.status();
  request = dynamic_cast<chat::v1::ChatRequest*>(m->get());
  ASSERT_NE(request, nullptr);
  EXPECT_EQ(request->message(), "hi");
  EXPECT_FALSE(request->has_model());
}

}  // namespace
}  // namespace chat::gateway
