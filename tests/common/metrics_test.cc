#include "common/metrics.h"

#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/barrier.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/metrics_scrape.h"
#include "tests/testing/status_matchers.h"

// Strategy: each metric type is rendered into a fresh registry and compared
// with the exact text Prometheus expects; concurrent updates from several
// threads, released together by a barrier, must add up exactly; and the
// rendered text of every kind at once passes `promtool check metrics`.

namespace chat {
namespace {

using ::chat::testing::IsOk;
using ::testing::HasSubstr;

TEST(MetricsTest, CounterRendersHelpTypeAndValue) {
  MetricsRegistry registry;
  Counter& c = registry.AddCounter("chatd_things_total", "Things done.");
  c.Increment();
  c.Increment(2.5);
  c.Increment(-7);  // Ignored: a counter never goes down.
  EXPECT_EQ(registry.Render(),
            "# HELP chatd_things_total Things done.\n"
            "# TYPE chatd_things_total counter\n"
            "chatd_things_total 3.5\n");
}

TEST(MetricsTest, GaugeGoesUpAndDown) {
  MetricsRegistry registry;
  Gauge& g = registry.AddGauge("chatd_open", "Open things.");
  g.Increment();
  g.Increment();
  g.Decrement();
  EXPECT_EQ(registry.Render(),
            "# HELP chatd_open Open things.\n"
            "# TYPE chatd_open gauge\n"
            "chatd_open 1\n");
  g.Set(-0.25);
  EXPECT_THAT(registry.Render(), HasSubstr("\nchatd_open -0.25\n"));
}

TEST(MetricsTest, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  MetricsRegistry registry;
  Histogram& h =
      registry.AddHistogram("chatd_wait_seconds", "Waits.", {0.1, 1, 2.5});
  h.Observe(0.05);
  h.Observe(0.1);  // On a bound: counted in that bucket (le means <=).
  h.Observe(2);
  h.Observe(7);
  EXPECT_EQ(registry.Render(),
            "# HELP chatd_wait_seconds Waits.\n"
            "# TYPE chatd_wait_seconds histogram\n"
            "chatd_wait_seconds_bucket{le=\"0.1\"} 2\n"
            "chatd_wait_seconds_bucket{le=\"1\"} 2\n"
            "chatd_wait_seconds_bucket{le=\"2.5\"} 3\n"
            "chatd_wait_seconds_bucket{le=\"+Inf\"} 4\n"
            "chatd_wait_seconds_sum 9.15\n"
            "chatd_wait_seconds_count 4\n");
}

TEST(MetricsTest, LabelledFamiliesRenderChildrenInOrder) {
  MetricsRegistry registry;
  CounterFamily& requests = registry.AddCounterFamily(
      "chatd_requests_total", "Requests.", {"method", "code"});
  requests.WithLabels({"Chat", "OK"}).Increment(3);
  requests.WithLabels({"Chat", "INTERNAL"}).Increment();
  // The same values give the same child.
  EXPECT_EQ(&requests.WithLabels({"Chat", "OK"}),
            &requests.WithLabels({"Chat", "OK"}));
  HistogramFamily& latency = registry.AddHistogramFamily(
      "chatd_latency_seconds", "Latency.", {"method"}, {1});
  latency.WithLabels({"Chat"}).Observe(0.5);
  EXPECT_EQ(registry.Render(),
            "# HELP chatd_latency_seconds Latency.\n"
            "# TYPE chatd_latency_seconds histogram\n"
            "chatd_latency_seconds_bucket{method=\"Chat\",le=\"1\"} 1\n"
            "chatd_latency_seconds_bucket{method=\"Chat\",le=\"+Inf\"} 1\n"
            "chatd_latency_seconds_sum{method=\"Chat\"} 0.5\n"
            "chatd_latency_seconds_count{method=\"Chat\"} 1\n"
            "# HELP chatd_requests_total Requests.\n"
            "# TYPE chatd_requests_total counter\n"
            "chatd_requests_total{method=\"Chat\",code=\"INTERNAL\"} 1\n"
            "chatd_requests_total{method=\"Chat\",code=\"OK\"} 3\n");
}

TEST(MetricsTest, LabelValuesAndHelpAreEscaped) {
  MetricsRegistry registry;
  registry
      .AddGaugeFamily("chatd_odd", "Back\\slash and\nnewline \"quoted\".",
                      {"v"})
      .WithLabels({"a\\b\"c\nd"})
      .Set(1);
  EXPECT_EQ(registry.Render(),
            "# HELP chatd_odd Back\\\\slash and\\nnewline \"quoted\".\n"
            "# TYPE chatd_odd gauge\n"
            "chatd_odd{v=\"a\\\\b\\\"c\\nd\"} 1\n");
}

TEST(MetricsTest, ValuesAreFormattedAsPrometheusReadsThem) {
  EXPECT_EQ(FormatMetricValue(0), "0");
  EXPECT_EQ(FormatMetricValue(42), "42");
  EXPECT_EQ(FormatMetricValue(-3), "-3");
  EXPECT_EQ(FormatMetricValue(0.1), "0.1");
  EXPECT_EQ(FormatMetricValue(1.0 / 3), "0.3333333333333333");
  EXPECT_EQ(FormatMetricValue(1e20), "1e+20");
  EXPECT_EQ(FormatMetricValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatMetricValue(-std::numeric_limits<double>::infinity()),
            "-Inf");
  EXPECT_EQ(FormatMetricValue(std::nan("")), "NaN");
}

TEST(MetricsTest, ConcurrentUpdatesAddUpExactly) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20000;
  MetricsRegistry registry;
  Counter& counter = registry.AddCounter("chatd_c_total", "C.");
  Gauge& gauge = registry.AddGauge("chatd_g", "G.");
  Histogram& histogram = registry.AddHistogram("chatd_h", "H.", {0.5});
  CounterFamily& family =
      registry.AddCounterFamily("chatd_f_total", "F.", {"k"});
  absl::Barrier* start = new absl::Barrier(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      if (start->Block()) delete start;
      Counter& mine = family.WithLabels({t % 2 == 0 ? "even" : "odd"});
      for (int i = 0; i < kPerThread; ++i) {
        counter.Increment();
        gauge.Increment(2);
        gauge.Decrement();
        histogram.Observe(i % 2 == 0 ? 0.25 : 1);
        mine.Increment();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const double total = double{kThreads} * kPerThread;
  EXPECT_EQ(counter.value(), total);
  EXPECT_EQ(gauge.value(), total);
  EXPECT_EQ(histogram.CumulativeCounts(),
            (std::vector<uint64_t>{static_cast<uint64_t>(total / 2),
                                   static_cast<uint64_t>(total)}));
  EXPECT_EQ(histogram.sum(), total / 2 * 0.25 + total / 2 * 1);
  EXPECT_EQ(family.WithLabels({"even"}).value(), total / 2);
  EXPECT_EQ(family.WithLabels({"odd"}).value(), total / 2);
}

TEST(MetricsTest, ProcessMetricsAndBuildInfo) {
  MetricsRegistry registry;
  AddProcessMetrics(registry);
  AddBuildInfo(registry, "v1.2-3", "chat-test");
  std::string text = registry.Render();
  EXPECT_THAT(text, HasSubstr("# TYPE process_cpu_seconds_total counter\n"));
  EXPECT_THAT(
      text,
      HasSubstr(
          "chatd_build_info{version=\"v1.2-3\",binary=\"chat-test\"} 1\n"));
  std::optional<double> rss =
      testing::SampleValue(text, "process_resident_memory_bytes");
  ASSERT_TRUE(rss.has_value());
  EXPECT_GT(*rss, 1 << 20);
  std::optional<double> fds = testing::SampleValue(text, "process_open_fds");
  ASSERT_TRUE(fds.has_value());
  EXPECT_GE(*fds, 3);  // At least stdin, stdout and stderr.
  std::optional<double> start =
      testing::SampleValue(text, "process_start_time_seconds");
  ASSERT_TRUE(start.has_value());
  // Started after 2020 and not in the future.
  EXPECT_GT(*start, 1.58e9);
  EXPECT_LE(*start, absl::ToUnixSeconds(absl::Now()) + 1);
}

TEST(MetricsTest, RenderedTextPassesPromtool) {
  if (testing::PromtoolPath().empty()) {
    if (testing::PromtoolRequired()) {
      GTEST_FAIL() << "CHAT_TEST_REQUIRE_PROMTOOL=1 but promtool is missing "
                      "(Debian package prometheus; scripts/install-deps.sh "
                      "--test)";
    }
    GTEST_SKIP() << "promtool not installed";
  }
  MetricsRegistry registry;
  AddProcessMetrics(registry);
  AddBuildInfo(registry, "test", "metrics_test");
  registry.AddCounter("chatd_plain_total", "Plain.").Increment();
  registry.AddGauge("chatd_level", "Level.").Set(0.5);
  registry
      .AddCounterFamily("chatd_requests_total", "Requests by code.",
                        {"method", "code"})
      .WithLabels({"/chat.v1.ChatService/Chat", "OK"})
      .Increment(3);
  registry
      .AddHistogramFamily("chatd_duration_seconds", "Durations.", {"method"},
                          LatencySecondsBuckets())
      .WithLabels({"a\"b\\c\nd"})
      .Observe(0.3);
  registry.AddHistogram("chatd_empty_seconds", "Never observed.",
                        ExponentialBuckets(0.01, 2, 5));
  EXPECT_THAT(testing::PromtoolCheckMetrics(registry.Render()), IsOk());
}

TEST(MetricsDeathTest, DuplicateNamesAndWrongLabelCountsStop) {
  MetricsRegistry registry;
  registry.AddCounter("chatd_once_total", "Once.");
  EXPECT_DEATH(registry.AddGauge("chatd_once_total", "Twice."), "added twice");
  CounterFamily& f = registry.AddCounterFamily("chatd_f_total", "F.", {"a"});
  EXPECT_DEATH(f.WithLabels({"x", "y"}), "has 1 labels, given 2");
  EXPECT_DEATH(registry.AddCounter("0bad", "Bad."), "invalid metric name");
  EXPECT_DEATH(registry.AddHistogramFamily("chatd_h", "H.", {"le"}, {1}),
               "invalid label name");
}

}  // namespace
}  // namespace chat
