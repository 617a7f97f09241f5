// IsLoopbackHost: one table for the definition both binaries use.

#include "common/net_address.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace chat {
namespace {

struct LoopbackRow {
  std::string host;
  bool loopback;
};

class IsLoopbackHostTest : public ::testing::TestWithParam<LoopbackRow> {};

TEST_P(IsLoopbackHostTest, Classifies) {
  EXPECT_EQ(IsLoopbackHost(GetParam().host), GetParam().loopback)
      << "'" << GetParam().host << "'";
}

INSTANTIATE_TEST_SUITE_P(
    Table, IsLoopbackHostTest,
    ::testing::Values(
        // Loopback, in every spelling the callers pass.
        LoopbackRow{"127.0.0.1", true}, LoopbackRow{"127.8.9.10", true},
        LoopbackRow{"127.1.2.3:8080", true}, LoopbackRow{" 127.0.0.1 ", true},
        LoopbackRow{"::1", true}, LoopbackRow{"[::1]", true},
        LoopbackRow{"[::1]:50051", true}, LoopbackRow{"::ffff:127.0.0.1", true},
        LoopbackRow{"[::ffff:127.9.0.1]:80", true},
        LoopbackRow{"localhost", true}, LoopbackRow{"LocalHost", true},
        LoopbackRow{"localhost:8080", true},
        // Every interface, other hosts, names, nothing.
        LoopbackRow{"0.0.0.0", false}, LoopbackRow{"::", false},
        LoopbackRow{"[::]:80", false}, LoopbackRow{"10.0.0.1", false},
        LoopbackRow{"10.127.0.1", false}, LoopbackRow{"192.0.2.1", false},
        LoopbackRow{"192.168.1.2:80", false}, LoopbackRow{"128.0.0.1", false},
        LoopbackRow{"[2001:db8::1]:80", false},
        LoopbackRow{"::ffff:10.0.0.1", false},
        LoopbackRow{"chat.example.com", false},
        LoopbackRow{"localhost.example.com", false}, LoopbackRow{"", false},
        // Malformed: never loopback.
        LoopbackRow{"garbage", false}, LoopbackRow{"[::1", false},
        LoopbackRow{"[::1]junk", false}, LoopbackRow{"[::1]:", false},
        LoopbackRow{"127.0.0.1:port", false}, LoopbackRow{"127.0.0.1/8", false},
        LoopbackRow{"127.1", false}, LoopbackRow{"::1%lo", false}),
    [](const ::testing::TestParamInfo<LoopbackRow>& info) {
      return absl::StrCat("Row", info.index);
    });

}  // namespace
}  // namespace chat
