// Table of requests and the verdict ValidateChatTurnRequest gives each.

#include "server/engine/validation.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace chat {
namespace {

using ::chat::testing::StatusIs;

struct Case {
  std::string name;
  ChatTurnRequest request;
  absl::StatusCode code;
  std::string message_part;  // What the error must mention.
};

ChatTurnRequest Valid() {
  ChatTurnRequest request;
  request.session_id = "user-1@example.com:chat_2.v3";
  request.message = "Hello";
  return request;
}

template <typename Mutate>
ChatTurnRequest With(Mutate mutate) {
  ChatTurnRequest request = Valid();
  mutate(request);
  return request;
}

class ValidationTest : public ::testing::TestWithParam<Case> {};

TEST_P(ValidationTest, Verdict) {
  RequestLimits limits;
  limits.max_message_bytes = 100;
  const Case& c = GetParam();
  absl::Status status = ValidateChatTurnRequest(c.request, limits);
  EXPECT_THAT(status, StatusIs(c.code, ::testing::HasSubstr(c.message_part)));
}

INSTANTIATE_TEST_SUITE_P(
    Requests, ValidationTest,
    ::testing::Values(
        Case{"Valid", Valid(), absl::StatusCode::kOk, ""},
        Case{"EmptyMessage", With([](auto& r) { r.message = ""; }),
             absl::StatusCode::kInvalidArgument, "message is required"},
        Case{"MessageAtLimit",
             With([](auto& r) { r.message = std::string(100, 'x'); }),
             absl::StatusCode::kOk, ""},
        Case{"MessageOverLimit",
             With([](auto& r) { r.message = std::string(101, 'x'); }),
             absl::StatusCode::kInvalidArgument, "limit is 100"},
        Case{"EmptySessionId", With([](auto& r) { r.session_id = ""; }),
             absl::StatusCode::kInvalidArgument, "session_id is required"},
        Case{"SessionIdAt128",
             With([](auto& r) { r.session_id = std::string(128, 'a'); }),
             absl::StatusCode::kOk, ""},
        Case{"SessionIdOver128",
             With([](auto& r) { r.session_id = std::string(129, 'a'); }),
             absl::StatusCode::kInvalidArgument, "limit is 128"},
        Case{"SessionIdWithSlash", With([](auto& r) { r.session_id = "a/b"; }),
             absl::StatusCode::kInvalidArgument, "may contain only"},
        Case{"SessionIdWithSpace", With([](auto& r) { r.session_id = "a b"; }),
             absl::StatusCode::kInvalidArgument, "may contain only"},
        Case{"SessionIdNonAscii",
             With([](auto& r) { r.session_id = "caf\xc3\xa9"; }),
             absl::StatusCode::kInvalidArgument, "may contain only"},
        Case{"MaxTokensZero", With([](auto& r) { r.max_tokens = 0; }),
             absl::StatusCode::kInvalidArgument, "max_tokens"},
        Case{"MaxTokensTooMany", With([](auto& r) { r.max_tokens = 65537; }),
             absl::StatusCode::kInvalidArgument, "max_tokens"},
        Case{"MaxTokensOne", With([](auto& r) { r.max_tokens = 1; }),
             absl::StatusCode::kOk, ""},
        Case{"TemperatureNegative", With([](auto& r) { r.temperature = -0.1; }),
             absl::StatusCode::kInvalidArgument, "temperature"},
        Case{"TemperatureAboveTwo", With([](auto& r) { r.temperature = 2.01; }),
             absl::StatusCode::kInvalidArgument, "temperature"},
        Case{"TemperatureNaN",
             With([](auto& r) { r.temperature = std::nan(""); }),
             absl::StatusCode::kInvalidArgument, "temperature"},
        Case{"TemperatureTwo", With([](auto& r) { r.temperature = 2.0; }),
             absl::StatusCode::kOk, ""},
        Case{"SystemPromptWithNul",
             With([](auto& r) { r.system_prompt = std::string("a\0b", 3); }),
             absl::StatusCode::kInvalidArgument, "NUL"},
        Case{"ModelWithNul",
             With([](auto& r) { r.model = std::string("m\0", 2); }),
             absl::StatusCode::kInvalidArgument, "NUL"},
        Case{"MessageWithNulIsFine",
             With([](auto& r) { r.message = std::string("a\0b", 3); }),
             absl::StatusCode::kOk, ""},
        Case{"EditTurn", With([](auto& r) { r.edit_turn_id = 2; }),
             absl::StatusCode::kOk, ""},
        Case{"EditTurnZero", With([](auto& r) { r.edit_turn_id = 0; }),
             absl::StatusCode::kInvalidArgument, "edit_turn_id"},
        Case{"EditWithoutMessage", With([](auto& r) {
               r.edit_turn_id = 1;
               r.message = "";
             }),
             absl::StatusCode::kInvalidArgument, "message is required"},
        Case{"RegenerateLast", With([](auto& r) {
               r.regenerate_turn_id = 0;
               r.message = "";
             }),
             absl::StatusCode::kOk, ""},
        Case{"RegenerateWithMessage",
             With([](auto& r) { r.regenerate_turn_id = 1; }),
             absl::StatusCode::kInvalidArgument, "message must be empty"},
        Case{"RegenerateNegative", With([](auto& r) {
               r.regenerate_turn_id = -1;
               r.message = "";
             }),
             absl::StatusCode::kInvalidArgument, "regenerate_turn_id"},
        Case{"EditAndRegenerate", With([](auto& r) {
               r.edit_turn_id = 1;
               r.regenerate_turn_id = 1;
             }),
             absl::StatusCode::kInvalidArgument, "at most one"},
        Case{"EditWithRequestId", With([](auto& r) {
               r.edit_turn_id = 1;
               r.request_id = "r1";
             }),
             absl::StatusCode::kInvalidArgument, "request id"}),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

TEST(AllowedModelsTest, OnlyListedModelsWhenAListIsSet) {
  RequestLimits limits;
  EXPECT_TRUE(
      ValidateChatTurnRequest(With([](auto& r) { r.model = "any"; }), limits)
          .ok());
  limits.allowed_models = {"claude-sonnet-4-6", "claude-haiku-4-5"};
  EXPECT_TRUE(ValidateChatTurnRequest(Valid(), limits).ok());
  EXPECT_TRUE(ValidateChatTurnRequest(
                  With([](auto& r) { r.model = "claude-haiku-4-5"; }), limits)
                  .ok());
  EXPECT_THAT(
      ValidateChatTurnRequest(With([](auto& r) { r.model = "gpt-5"; }), limits),
      StatusIs(absl::StatusCode::kInvalidArgument,
               ::testing::HasSubstr("not allowed")));
}

}  // namespace
}  // namespace chat
