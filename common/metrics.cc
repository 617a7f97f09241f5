#include "common/metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace chat {
namespace {

// Adds `v` to an atomic double. Relaxed: a metric orders nothing else.
void AtomicAdd(std::atomic<double>& a, double v) {
  double old = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(old, old + v, std::memory_order_relaxed)) {
  }
}

[[noreturn]] void Die(absl::string_view message) {
  std::fprintf(stderr, "metrics: %.*s\n", static_cast<int>(message.size()),
               message.data());
  std::abort();
}

bool ValidName(absl::string_view name, bool allow_colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = absl::ascii_isalpha(c) || c == '_' || (allow_colon && c == ':') ||
              (i > 0 && absl::ascii_isdigit(c));
    if (!ok) return false;
  }
  return true;
}

std::string EscapeHelp(absl::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// The fields of /proc/self/stat after the command name, which may hold
// spaces and parentheses: field 3 (state) is element 0.
std::vector<std::string> ProcSelfStatFields() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  std::getline(in, line);
  size_t close = line.rfind(')');
  if (close == std::string::npos) return {};
  return absl::StrSplit(absl::string_view(line).substr(close + 1), ' ',
                        absl::SkipEmpty());
}

double ProcessCpuSeconds() {
  std::vector<std::string> f = ProcSelfStatFields();
  // utime and stime are fields 14 and 15, in clock ticks.
  uint64_t utime = 0, stime = 0;
  if (f.size() < 13 || !absl::SimpleAtoi(f[11], &utime) ||
      !absl::SimpleAtoi(f[12], &stime)) {
    return 0;
  }
  return static_cast<double>(utime + stime) /
         static_cast<double>(sysconf(_SC_CLK_TCK));
}

double ProcessResidentBytes() {
  std::ifstream in("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  if (!(in >> size >> resident)) return 0;
  return static_cast<double>(resident) *
         static_cast<double>(sysconf(_SC_PAGESIZE));
}

double ProcessOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  int n = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n - 1;  // Not the descriptor that reads the directory.
}

double ProcessMaxFds() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  return static_cast<double>(limit.rlim_cur);
}

// Seconds since the epoch at which the process started: the boot time from
// /proc/stat plus the start tick (field 22) of /proc/self/stat.
double ProcessStartTime() {
  std::vector<std::string> f = ProcSelfStatFields();
  uint64_t start_ticks = 0;
  if (f.size() < 20 || !absl::SimpleAtoi(f[19], &start_ticks)) return 0;
  std::ifstream in("/proc/stat");
  std::string key;
  uint64_t boot_time = 0;
  while (in >> key) {
    if (key == "btime") {
      in >> boot_time;
      break;
    }
    std::string rest;
    std::getline(in, rest);
  }
  return static_cast<double>(boot_time) +
         static_cast<double>(start_ticks) /
             static_cast<double>(sysconf(_SC_CLK_TCK));
}

// A metric whose value is read when rendered.
class CallbackFamily final : public metrics_internal::FamilyBase {
 public:
  CallbackFamily(std::string name, std::string help, std::string type,
                 std::function<double()> read)
      : FamilyBase(std::move(name), std::move(help), std::move(type), {}),
        read_(std::move(read)) {}

 private:
  void RenderSamples(std::string* out) const override {
    metrics_internal::RenderSample(name_, "", "", read_(), out);
  }

  const std::function<double()> read_;
};

}  // namespace

void Counter::Increment(double v) {
  if (!(v >= 0)) return;
  AtomicAdd(value_, v);
}

void Gauge::Increment(double v) { AtomicAdd(value_, v); }

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i]) || (i > 0 && bounds_[i] <= bounds_[i - 1])) {
      Die("histogram bounds must be finite and strictly increasing");
    }
  }
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::Observe(double v) {
  // A handful of buckets: a linear scan beats a binary search's branches.
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  AtomicAdd(sum_, v);
}

std::vector<uint64_t> Histogram::CumulativeCounts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    out[i] = total;
  }
  return out;
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  std::vector<double> out;
  out.reserve(count);
  double b = start;
  for (int i = 0; i < count; ++i, b *= factor) out.push_back(b);
  return out;
}

std::vector<double> LatencySecondsBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60};
}

std::string EscapeLabelValue(absl::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string FormatMetricValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    return absl::StrFormat("%.0f", v);
  }
  for (int precision = 6; precision <= 17; ++precision) {
    std::string s = absl::StrFormat("%.*g", precision, v);
    if (std::strtod(s.c_str(), nullptr) == v) return s;
  }
  return absl::StrFormat("%.17g", v);
}

namespace metrics_internal {

FamilyBase::FamilyBase(std::string name, std::string help, std::string type,
                       std::vector<std::string> label_names)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(std::move(type)),
      label_names_(std::move(label_names)) {
  if (!ValidName(name_, /*allow_colon=*/true)) {
    Die(absl::StrCat("invalid metric name \"", name_, "\""));
  }
  for (const std::string& label : label_names_) {
    if (!ValidName(label, /*allow_colon=*/false) ||
        absl::StartsWith(label, "__") ||
        (type_ == "histogram" && label == "le")) {
      Die(absl::StrCat("invalid label name \"", label, "\" of ", name_));
    }
  }
}

void FamilyBase::Render(std::string* out) const {
  absl::StrAppend(out, "# HELP ", name_, " ", EscapeHelp(help_), "\n",
                  "# TYPE ", name_, " ", type_, "\n");
  RenderSamples(out);
}

std::string FamilyBase::LabelString(
    const std::vector<std::string>& values) const {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ",";
    absl::StrAppend(&out, label_names_[i], "=\"", EscapeLabelValue(values[i]),
                    "\"");
  }
  return out;
}

void DieWrongLabelCount(absl::string_view name, size_t want, size_t got) {
  Die(absl::StrCat(name, " has ", want, " labels, given ", got, " values"));
}

void RenderSample(absl::string_view name, absl::string_view suffix,
                  absl::string_view labels, double value, std::string* out) {
  absl::StrAppend(out, name, suffix);
  if (!labels.empty()) absl::StrAppend(out, "{", labels, "}");
  absl::StrAppend(out, " ", FormatMetricValue(value), "\n");
}

void RenderValue(const Counter& c, absl::string_view name,
                 absl::string_view labels, std::string* out) {
  RenderSample(name, "", labels, c.value(), out);
}

void RenderValue(const Gauge& g, absl::string_view name,
                 absl::string_view labels, std::string* out) {
  RenderSample(name, "", labels, g.value(), out);
}

void RenderValue(const Histogram& h, absl::string_view name,
                 absl::string_view labels, std::string* out) {
  // The counts are read once, so the +Inf bucket and _count agree even
  // while observations arrive (the sum may be a little ahead of them).
  std::vector<uint64_t> counts = h.CumulativeCounts();
  const std::string prefix = labels.empty() ? "" : absl::StrCat(labels, ",");
  for (size_t i = 0; i < counts.size(); ++i) {
    std::string le = i < h.bounds().size() ? FormatMetricValue(h.bounds()[i])
                                           : std::string("+Inf");
    RenderSample(name, "_bucket", absl::StrCat(prefix, "le=\"", le, "\""),
                 static_cast<double>(counts[i]), out);
  }
  RenderSample(name, "_sum", labels, h.sum(), out);
  RenderSample(name, "_count", labels, static_cast<double>(counts.back()), out);
}

}  // namespace metrics_internal

MetricsRegistry& MetricsRegistry::Default() {
  static MetricsRegistry* registry = new MetricsRegistry();
  return *registry;
}

template <typename F>
F& MetricsRegistry::Add(std::unique_ptr<F> family) {
  F& ref = *family;
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = families_.emplace(family->name(), std::move(family));
  if (!inserted) Die(absl::StrCat("metric ", it->first, " added twice"));
  return ref;
}

Counter& MetricsRegistry::AddCounter(absl::string_view name,
                                     absl::string_view help) {
  return AddCounterFamily(name, help, {}).WithLabels({});
}

Gauge& MetricsRegistry::AddGauge(absl::string_view name,
                                 absl::string_view help) {
  return AddGaugeFamily(name, help, {}).WithLabels({});
}

Histogram& MetricsRegistry::AddHistogram(absl::string_view name,
                                         absl::string_view help,
                                         std::vector<double> bounds) {
  return AddHistogramFamily(name, help, {}, std::move(bounds)).WithLabels({});
}

CounterFamily& MetricsRegistry::AddCounterFamily(
    absl::string_view name, absl::string_view help,
    std::vector<std::string> label_names) {
  return Add(std::make_unique<CounterFamily>(
      std::string(name), std::string(help), "counter", std::move(label_names),
      [] { return std::make_unique<Counter>(); }));
}

GaugeFamily& MetricsRegistry::AddGaugeFamily(
    absl::string_view name, absl::string_view help,
    std::vector<std::string> label_names) {
  return Add(std::make_unique<GaugeFamily>(
      std::string(name), std::string(help), "gauge", std::move(label_names),
      [] { return std::make_unique<Gauge>(); }));
}

HistogramFamily& MetricsRegistry::AddHistogramFamily(
    absl::string_view name, absl::string_view help,
    std::vector<std::string> label_names, std::vector<double> bounds) {
  // Checks the bounds now rather than at the first child.
  Histogram check(bounds);
  return Add(std::make_unique<HistogramFamily>(
      std::string(name), std::string(help), "histogram", std::move(label_names),
      [bounds] { return std::make_unique<Histogram>(bounds); }));
}

void MetricsRegistry::AddCallback(absl::string_view name,
                                  absl::string_view help,
                                  absl::string_view type,
                                  std::function<double()> read) {
  if (type != "gauge" && type != "counter") {
    Die(absl::StrCat("callback metric ", name, " has type ", type));
  }
  Add(std::make_unique<CallbackFamily>(std::string(name), std::string(help),
                                       std::string(type), std::move(read)));
}

std::string MetricsRegistry::Render() const {
  std::string out;
  absl::MutexLock lock(&mu_);
  for (const auto& [name, family] : families_) family->Render(&out);
  return out;
}

void AddProcessMetrics(MetricsRegistry& registry) {
  registry.AddCallback("process_cpu_seconds_total",
                       "Total user and system CPU time spent in seconds.",
                       "counter", ProcessCpuSeconds);
  registry.AddCallback("process_resident_memory_bytes",
                       "Resident memory size in bytes.", "gauge",
                       ProcessResidentBytes);
  registry.AddCallback("process_open_fds", "Number of open file descriptors.",
                       "gauge", ProcessOpenFds);
  registry.AddCallback("process_max_fds",
                       "Maximum number of open file descriptors.", "gauge",
                       ProcessMaxFds);
  const double start = ProcessStartTime();
  registry.AddCallback("process_start_time_seconds",
                       "Start time of the process since unix epoch in seconds.",
                       "gauge", [start] { return start; });
}

absl::string_view BuildVersion() { return CHAT_VERSION; }

void AddBuildInfo(MetricsRegistry& registry, absl::string_view version,
                  absl::string_view binary) {
  registry
      .AddGaugeFamily("chatd_build_info",
                      "Always 1; the labels name the build and the binary.",
                      {"version", "binary"})
      .WithLabels({version, binary})
      .Set(1);
}

}  // namespace chat
