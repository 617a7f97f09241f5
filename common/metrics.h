#ifndef CHAT_COMMON_METRICS_H_
#define CHAT_COMMON_METRICS_H_

// A small Prometheus client: counters, gauges and fixed-bucket histograms,
// with or without labels, rendered in the text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/). Debian has
// no C++ client, and we need only this much of one.
//
// Updating a metric never takes a lock: values are atomics (doubles through
// a compare-and-swap loop), and a histogram keeps one atomic counter per
// bucket. Only finding a labelled child (`WithLabels`) locks its family, so
// a hot path looks its child up once and keeps the reference; children live
// as long as their registry and are never removed.
//
// Registration is at start-up (a duplicate or invalid name stops the
// process: a programming error); every class here is thread-safe.

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace chat {

// A value that only goes up (requests, bytes, seconds of CPU).
class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  // Adds `v`, which must be >= 0 (a negative `v` is ignored).
  void Increment(double v = 1.0);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// A value that goes up and down (open streams, queued turns).
class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Increment(double v = 1.0);
  void Decrement(double v = 1.0) { Increment(-v); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Observations counted into buckets fixed at construction, with their sum.
class Histogram {
 public:
  // `bounds`: the buckets' upper bounds, strictly increasing; +Inf is
  // implied and must not be given.
  explicit Histogram(std::vector<double> bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  void Observe(double v);

  const std::vector<double>& bounds() const { return bounds_; }
  // Observations <= bounds()[i], cumulative; the last element (index
  // bounds().size()) is every observation.
  std::vector<uint64_t> CumulativeCounts() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  const std::vector<double> bounds_;
  // Not cumulative: counts_[i] holds the observations in (bounds_[i-1],
  // bounds_[i]]; the last one those above every bound.
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<double> sum_{0.0};
};

// Bucket bounds: `count` bounds from `start`, each `factor` times the last.
std::vector<double> ExponentialBuckets(double start, double factor, int count);
// Seconds from 5 ms to 60 s, for request and upstream latencies.
std::vector<double> LatencySecondsBuckets();

namespace metrics_internal {

// What the registry holds: one metric family, rendered as a block.
class FamilyBase {
 public:
  FamilyBase(std::string name, std::string help, std::string type,
             std::vector<std::string> label_names);
  virtual ~FamilyBase() = default;

  // Appends "# HELP", "# TYPE" and every sample line.
  void Render(std::string* out) const;
  const std::string& name() const { return name_; }

 protected:
  virtual void RenderSamples(std::string* out) const = 0;
  // "a=\"x\",b=\"y\"" for `values` (one per label name, escaped).
  std::string LabelString(const std::vector<std::string>& values) const;

  const std::string name_;
  const std::string help_;
  const std::string type_;
  const std::vector<std::string> label_names_;
};

// Stops the process: WithLabels was given the wrong number of values.
[[noreturn]] void DieWrongLabelCount(absl::string_view name, size_t want,
                                     size_t got);

void RenderSample(absl::string_view name, absl::string_view suffix,
                  absl::string_view labels, double value, std::string* out);
// `labels` is a rendered label set without braces ("a=\"1\",b=\"2\""),
// empty for none.
void RenderValue(const Counter& c, absl::string_view name,
                 absl::string_view labels, std::string* out);
void RenderValue(const Gauge& g, absl::string_view name,
                 absl::string_view labels, std::string* out);
void RenderValue(const Histogram& h, absl::string_view name,
                 absl::string_view labels, std::string* out);

}  // namespace metrics_internal

// A metric with label names; each distinct set of values is a child.
template <typename T>
class Family final : public metrics_internal::FamilyBase {
 public:
  Family(std::string name, std::string help, std::string type,
         std::vector<std::string> label_names,
         std::function<std::unique_ptr<T>()> make)
      : FamilyBase(std::move(name), std::move(help), std::move(type),
                   std::move(label_names)),
        make_(std::move(make)) {}

  // The child for `values`, one per label name in order (a wrong count
  // stops the process), created on first use. Locks the family: keep the
  // reference where the label values are fixed.
  T& WithLabels(std::initializer_list<absl::string_view> values) {
    return WithLabels(std::vector<std::string>(values.begin(), values.end()));
  }
  T& WithLabels(const std::vector<std::string>& values) {
    CheckArity(values.size());
    absl::MutexLock lock(&mu_);
    std::unique_ptr<Child>& child = children_[values];
    if (child == nullptr) {
      child = std::make_unique<Child>();
      child->labels = LabelString(values);
      child->metric = make_();
    }
    return *child->metric;
  }

 private:
  struct Child {
    std::string labels;
    std::unique_ptr<T> metric;
  };

  void CheckArity(size_t n) const {
    if (n != label_names_.size()) {
      metrics_internal::DieWrongLabelCount(name_, label_names_.size(), n);
    }
  }

  void RenderSamples(std::string* out) const override {
    absl::MutexLock lock(&mu_);
    for (const auto& [values, child] : children_) {
      metrics_internal::RenderValue(*child->metric, name_, child->labels, out);
    }
  }

  const std::function<std::unique_ptr<T>()> make_;
  mutable absl::Mutex mu_;
  // Ordered, so the exposition is stable from scrape to scrape.
  std::map<std::vector<std::string>, std::unique_ptr<Child>> children_
      ABSL_GUARDED_BY(mu_);
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

// The metrics one process exposes. Thread-safe; metrics are added at
// start-up and live as long as the registry.
class MetricsRegistry {
 public:
  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // The process-wide registry that each layer adds its metrics to and the
  // /metrics endpoint renders. Never destroyed.
  static MetricsRegistry& Default();

  // Names must match [a-zA-Z_:][a-zA-Z0-9_:]* and be new to this registry;
  // label names [a-zA-Z_][a-zA-Z0-9_]* and not "le" for histograms.
  Counter& AddCounter(absl::string_view name, absl::string_view help);
  Gauge& AddGauge(absl::string_view name, absl::string_view help);
  Histogram& AddHistogram(absl::string_view name, absl::string_view help,
                          std::vector<double> bounds);
  CounterFamily& AddCounterFamily(absl::string_view name,
                                  absl::string_view help,
                                  std::vector<std::string> label_names);
  GaugeFamily& AddGaugeFamily(absl::string_view name, absl::string_view help,
                              std::vector<std::string> label_names);
  HistogramFamily& AddHistogramFamily(absl::string_view name,
                                      absl::string_view help,
                                      std::vector<std::string> label_names,
                                      std::vector<double> bounds);
  // A value read when rendered (process metrics): `type` is "gauge" or
  // "counter".
  void AddCallback(absl::string_view name, absl::string_view help,
                   absl::string_view type, std::function<double()> read);

  // Every family in the text format 0.0.4, families in name order.
  std::string Render() const;

 private:
  template <typename F>
  F& Add(std::unique_ptr<F> family);

  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<metrics_internal::FamilyBase>> families_
      ABSL_GUARDED_BY(mu_);
};

// The Content-Type of MetricsRegistry::Render()'s text.
inline constexpr absl::string_view kMetricsContentType =
    "text/plain; version=0.0.4; charset=utf-8";

// Adds process_cpu_seconds_total, process_resident_memory_bytes,
// process_open_fds, process_max_fds and process_start_time_seconds, read
// from /proc when scraped. Once per registry.
void AddProcessMetrics(MetricsRegistry& registry);

// The version this build reports (`git describe` at configure time).
absl::string_view BuildVersion();

// Adds chatd_build_info{version=...,binary=...} 1.
void AddBuildInfo(MetricsRegistry& registry, absl::string_view version,
                  absl::string_view binary);

// "a\\b\"c\nd" for a label value a\b"c<newline>d.
std::string EscapeLabelValue(absl::string_view value);
// A sample value as Prometheus reads it: "+Inf", "-Inf", "NaN", integers
// without a decimal point, others with the fewest digits that read back
// exactly.
std::string FormatMetricValue(double v);

}  // namespace chat

#endif  // CHAT_COMMON_METRICS_H_
