// The allocator the real binaries run with (cmake/Allocator.cmake). Built
// with jemalloc, both binaries must have picked up common/jemalloc_config.cc:
// jemalloc's background thread, which returns freed memory to the system
// while the process idles after a load, runs in each. Built with the system
// allocator (sanitizer builds, CHAT_ALLOCATOR=system) there is nothing to
// check.

#include <dirent.h>

#include <fstream>
#include <set>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/eventually.h"
#include "tests/testing/server_process.h"
#include "tests/testing/status_matchers.h"

namespace chat {
namespace {

using ::chat::testing::Eventually;
using ::chat::testing::IsOk;
using ::chat::testing::ServerProcess;

// The names of `pid`'s threads.
std::set<std::string> ThreadNames(pid_t pid) {
  std::set<std::string> names;
  const std::string tasks = absl::StrCat("/proc/", pid, "/task");
  DIR* dir = opendir(tasks.c_str());
  if (dir == nullptr) return names;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream comm(absl::StrCat(tasks, "/", entry->d_name, "/comm"));
    std::string name;
    std::getline(comm, name);
    names.insert(std::string(absl::StripAsciiWhitespace(name)));
  }
  closedir(dir);
  return names;
}

void ExpectJemallocBackgroundThread(const ServerProcess& process) {
  std::set<std::string> last;
  EXPECT_TRUE(Eventually([&] {
    last = ThreadNames(process.pid());
    return last.count("jemalloc_bg_thd") > 0;
  })) << "threads seen: "
      << absl::StrJoin(last, ", ");
}

class AllocatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!CHAT_BUILT_WITH_JEMALLOC) {
      GTEST_SKIP() << "built with the system allocator";
    }
  }
};

TEST_F(AllocatorTest, ServerRunsJemallocBackgroundThread) {
  ServerProcess server(CHAT_SERVER_BINARY,
                       {"--listen=127.0.0.1:0", "--store=memory"});
  ASSERT_THAT(server.Start(), IsOk());
  ExpectJemallocBackgroundThread(server);
}

TEST_F(AllocatorTest, GatewayRunsJemallocBackgroundThread) {
  ServerProcess server(CHAT_SERVER_BINARY,
                       {"--listen=127.0.0.1:0", "--store=memory"});
  ASSERT_THAT(server.Start(), IsOk());
  ServerProcess gateway(
      CHAT_GATEWAY_BINARY,
      {"--listen=127.0.0.1:0", absl::StrCat("--backend=", server.address())});
  ASSERT_THAT(gateway.Start(), IsOk());
  ExpectJemallocBackgroundThread(gateway);
}

}  // namespace
}  // namespace chat
