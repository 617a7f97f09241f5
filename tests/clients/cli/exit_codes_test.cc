// The exit code of every gRPC status, as a table: each class its own code,
// fixed (scripts depend on them; docs/CLI.md lists them).

#include "clients/cli/exit_codes.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace chat::cli {
namespace {

using ::testing::HasSubstr;

struct Case {
  grpc::StatusCode code;
  int exit_code;
};

class ExitCodesTest : public ::testing::TestWithParam<Case> {};

TEST_P(ExitCodesTest, Maps) {
  EXPECT_EQ(ExitCodeForStatus(GetParam().code), GetParam().exit_code);
}

INSTANTIATE_TEST_SUITE_P(
    AllCodes, ExitCodesTest,
    ::testing::Values(Case{grpc::StatusCode::OK, 0},
                      Case{grpc::StatusCode::CANCELLED, 130},
                      Case{grpc::StatusCode::UNKNOWN, 1},
                      Case{grpc::StatusCode::INVALID_ARGUMENT, 3},
                      Case{grpc::StatusCode::DEADLINE_EXCEEDED, 8},
                      Case{grpc::StatusCode::NOT_FOUND, 6},
                      Case{grpc::StatusCode::ALREADY_EXISTS, 1},
                      Case{grpc::StatusCode::PERMISSION_DENIED, 5},
                      Case{grpc::StatusCode::RESOURCE_EXHAUSTED, 7},
                      Case{grpc::StatusCode::FAILED_PRECONDITION, 1},
                      Case{grpc::StatusCode::ABORTED, 1},
                      Case{grpc::StatusCode::OUT_OF_RANGE, 3},
                      Case{grpc::StatusCode::UNIMPLEMENTED, 1},
                      Case{grpc::StatusCode::INTERNAL, 1},
                      Case{grpc::StatusCode::UNAVAILABLE, 8},
                      Case{grpc::StatusCode::DATA_LOSS, 1},
                      Case{grpc::StatusCode::UNAUTHENTICATED, 4}),
    [](const ::testing::TestParamInfo<Case>& info) {
      return "Code" + std::to_string(static_cast<int>(info.param.code));
    });

TEST(ExitCodeTableTest, ListsEveryCode) {
  const std::string table = ExitCodeTable();
  for (const char* line :
       {"  0    OK", "  1    ", "  2    bad flags", "  3    INVALID_ARGUMENT",
        "  4    UNAUTHENTICATED", "  5    PERMISSION_DENIED",
        "  6    NOT_FOUND", "  7    RESOURCE_EXHAUSTED",
        "  8    UNAVAILABLE, DEADLINE_EXCEEDED", "  130  CANCELLED"}) {
    EXPECT_THAT(table, HasSubstr(line));
  }
}

}  // namespace
}  // namespace chat::cli
