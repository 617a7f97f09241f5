// ConnectionLimiter: the total and per-client caps, slots given back, and
// the bookkeeping staying exact under concurrent acquire/release.

#include "gateway/http/connection_limiter.h"

#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace chat::gateway {
namespace {

TEST(ConnectionLimiterTest, CapsEachClient) {
  ConnectionLimiter limiter(/*max_total=*/10, /*max_per_client=*/2);
  EXPECT_TRUE(limiter.TryAcquire("10.0.0.1"));
  EXPECT_TRUE(limiter.TryAcquire("10.0.0.1"));
  EXPECT_FALSE(limiter.TryAcquire("10.0.0.1"));
  EXPECT_TRUE(limiter.TryAcquire("10.0.0.2"));
  EXPECT_EQ(limiter.open_from("10.0.0.1"), 2);
  EXPECT_EQ(limiter.open(), 3);
  limiter.Release("10.0.0.1");
  EXPECT_TRUE(limiter.TryAcquire("10.0.0.1"));
}

// A client with a /64 can use any of 2^64 addresses: the cap holds for the
// whole /64, and one IPv4 client counts once however its address arrives.
TEST(ConnectionLimiterTest, CapsAnIpv6ClientByItsSlash64) {
  ConnectionLimiter limiter(/*max_total=*/10, /*max_per_client=*/2);
  EXPECT_TRUE(limiter.TryAcquire("2001:db8:1:2::1"));
  EXPECT_TRUE(limiter.TryAcquire("2001:db8:1:2:ffff:ffff:ffff:fffe"));
  EXPECT_FALSE(limiter.TryAcquire("2001:db8:1:2:abcd::9"));
  EXPECT_EQ(limiter.open_from("2001:db8:1:2::77"), 2);
  EXPECT_TRUE(limiter.TryAcquire("2001:db8:1:3::1"));  // Another /64.
  limiter.Release("2001:db8:1:2::1");
  EXPECT_TRUE(limiter.TryAcquire("2001:db8:1:2::5"));
  EXPECT_EQ(limiter.open(), 3);
}

TEST(ConnectionLimiterTest, CountsAnIpv4MappedClientAsItsIpv4Address) {
  ConnectionLimiter limiter(/*max_total=*/10, /*max_per_client=*/2);
  EXPECT_TRUE(limiter.TryAcquire("192.0.2.7"));
  EXPECT_TRUE(limiter.TryAcquire("::ffff:192.0.2.7"));
  EXPECT_FALSE(limiter.TryAcquire("192.0.2.7"));
  EXPECT_EQ(limiter.open_from("::ffff:192.0.2.7"), 2);
  limiter.Release("::ffff:192.0.2.7");
  EXPECT_EQ(limiter.open_from("192.0.2.7"), 1);
}

TEST(ConnectionLimiterTest, ClientKeys) {
  EXPECT_EQ(ConnectionLimiter::ClientKey("10.0.0.1"), "10.0.0.1");
  EXPECT_EQ(ConnectionLimiter::ClientKey("::ffff:10.0.0.1"), "10.0.0.1");
  EXPECT_EQ(ConnectionLimiter::ClientKey("2001:db8:a:b:c:d:e:f"),
            "2001:db8:a:b::/64");
  EXPECT_EQ(ConnectionLimiter::ClientKey("::1"), "::/64");
  EXPECT_EQ(ConnectionLimiter::ClientKey("not an address"), "not an address");
}

TEST(ConnectionLimiterTest, CapsTheTotal) {
  ConnectionLimiter limiter(/*max_total=*/2, /*max_per_client=*/5);
  EXPECT_TRUE(limiter.TryAcquire("a"));
  EXPECT_TRUE(limiter.TryAcquire("b"));
  EXPECT_FALSE(limiter.TryAcquire("c"));
  EXPECT_EQ(limiter.open_from("c"), 0);  // A refusal takes nothing.
  limiter.Release("a");
  EXPECT_TRUE(limiter.TryAcquire("c"));
  EXPECT_EQ(limiter.open(), 2);
}

TEST(ConnectionLimiterTest, ForgetsClientsWithNoConnection) {
  ConnectionLimiter limiter(10, 1);
  ASSERT_TRUE(limiter.TryAcquire("a"));
  limiter.Release("a");
  EXPECT_EQ(limiter.open(), 0);
  EXPECT_EQ(limiter.open_from("a"), 0);
  // A release nobody acquired is logged and ignored, not counted.
  limiter.Release("a");
  EXPECT_EQ(limiter.open(), 0);
  EXPECT_TRUE(limiter.TryAcquire("a"));
}

TEST(ConnectionLimiterTest, StaysExactUnderConcurrency) {
  ConnectionLimiter limiter(1000, 1000);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&limiter, t] {
      const std::string client = absl::StrCat("client", t % 2);
      for (int i = 0; i < 10000; ++i) {
        if (limiter.TryAcquire(client)) limiter.Release(client);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(limiter.open(), 0);
}

}  // namespace
}  // namespace chat::gateway
