// The shared configuration path. Strategy: the validators are pure functions,
// checked by tables of accepted and refused values; the loading steps run on
// flags defined in this file (restored after each test by absl::FlagSaver),
// with the environment and a .env file in a fresh directory, to pin down
// which source wins and that errors name the flag and where its value came
// from.

#include "common/flag_config.h"

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/server_process.h"
#include "tests/testing/status_matchers.h"

ABSL_FLAG(int, fc_threads, 4, "test flag");
ABSL_FLAG(absl::Duration, fc_grace, absl::Seconds(10), "test flag");
ABSL_FLAG(std::string, fc_name, "default", "test flag");
ABSL_FLAG(bool, fc_verbose, false, "test flag");

namespace chat {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

// ---------------------------------------------------------------- validators

struct IntCase {
  std::string label;
  int64_t value;
  int64_t lo;
  int64_t hi;
  bool ok;
};

class CheckIntInRangeTest : public ::testing::TestWithParam<IntCase> {};

TEST_P(CheckIntInRangeTest, AcceptsOnlyTheClosedRange) {
  const IntCase& c = GetParam();
  absl::Status status = CheckIntInRange("store_threads", c.value, c.lo, c.hi);
  if (c.ok) {
    EXPECT_THAT(status, IsOk());
  } else {
    EXPECT_THAT(status,
                StatusIs(absl::StatusCode::kInvalidArgument,
                         absl::StrCat("--store_threads must be between ", c.lo,
                                      " and ", c.hi, "; got ", c.value)));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, CheckIntInRangeTest,
    ::testing::Values(IntCase{"Low", 1, 1, 256, true},
                      IntCase{"High", 256, 1, 256, true},
                      IntCase{"Zero", 0, 1, 256, false},
                      IntCase{"Above", 257, 1, 256, false},
                      IntCase{"Negative", -1, 0, 10, false},
                      IntCase{"ZeroAllowed", 0, 0, 10, true}),
    [](const ::testing::TestParamInfo<IntCase>& info) {
      return info.param.label;
    });

struct DurationCase {
  std::string label;
  absl::Duration value;
  bool ok;
};

class CheckDurationInRangeTest : public ::testing::TestWithParam<DurationCase> {
};

TEST_P(CheckDurationInRangeTest, AcceptsOnlyTheClosedRange) {
  const DurationCase& c = GetParam();
  absl::Status status = CheckDurationInRange(
      "shutdown_grace", c.value, absl::ZeroDuration(), absl::Hours(1));
  if (c.ok) {
    EXPECT_THAT(status, IsOk());
  } else {
    EXPECT_THAT(status,
                StatusIs(absl::StatusCode::kInvalidArgument,
                         absl::StrCat("--shutdown_grace must be between 0 and "
                                      "1h; got ",
                                      absl::FormatDuration(c.value))));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, CheckDurationInRangeTest,
    ::testing::Values(DurationCase{"Zero", absl::ZeroDuration(), true},
                      DurationCase{"Hour", absl::Hours(1), true},
                      DurationCase{"Negative", absl::Seconds(-1), false},
                      DurationCase{"TooLong", absl::Minutes(61), false},
                      DurationCase{"Infinite", absl::InfiniteDuration(),
                                   false}),
    [](const ::testing::TestParamInfo<DurationCase>& info) {
      return info.param.label;
    });

struct HostPortCase {
  std::string label;
  std::string value;
  bool ok;
  std::string host;
  int port;
};

class ParseHostPortTest : public ::testing::TestWithParam<HostPortCase> {};

TEST_P(ParseHostPortTest, SplitsOrRefuses) {
  const HostPortCase& c = GetParam();
  absl::StatusOr<HostPort> parsed = ParseHostPort("listen", c.value);
  if (c.ok) {
    ASSERT_THAT(parsed, IsOk());
    EXPECT_EQ(parsed->host, c.host);
    EXPECT_EQ(parsed->port, c.port);
  } else {
    EXPECT_THAT(parsed,
                StatusIs(absl::StatusCode::kInvalidArgument,
                         absl::StrCat("--listen must be HOST:PORT with a port "
                                      "between 0 and 65535; got '",
                                      c.value, "'")));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, ParseHostPortTest,
    ::testing::Values(
        HostPortCase{"Loopback", "127.0.0.1:50051", true, "127.0.0.1", 50051},
        HostPortCase{"PortZero", "127.0.0.1:0", true, "127.0.0.1", 0},
        HostPortCase{"PortMax", "localhost:65535", true, "localhost", 65535},
        HostPortCase{"AnyHost", ":8000", true, "", 8000},
        HostPortCase{"Ipv6", "[::1]:8000", true, "::1", 8000},
        HostPortCase{"PortTooBig", "127.0.0.1:99999", false, "", 0},
        HostPortCase{"Port65536", "127.0.0.1:65536", false, "", 0},
        HostPortCase{"NegativePort", "127.0.0.1:-1", false, "", 0},
        HostPortCase{"SignedPort", "127.0.0.1:+80", false, "", 0},
        HostPortCase{"NoPort", "127.0.0.1", false, "", 0},
        HostPortCase{"EmptyPort", "127.0.0.1:", false, "", 0},
        HostPortCase{"LetterPort", "127.0.0.1:http", false, "", 0},
        HostPortCase{"Ipv6WithoutBrackets", "::1:80", false, "", 0},
        HostPortCase{"UnclosedBracket", "[::1:80", false, "", 0},
        HostPortCase{"Empty", "", false, "", 0}),
    [](const ::testing::TestParamInfo<HostPortCase>& info) {
      return info.param.label;
    });

TEST(CheckOneOfTest, NamesTheAcceptedValues) {
  EXPECT_THAT(CheckOneOf("provider", "echo", {"auto", "echo"}), IsOk());
  EXPECT_THAT(CheckOneOf("provider", "Echo", {"auto", "echo"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "--provider must be one of auto, echo; got 'Echo'"));
}

TEST(CheckNotEmptyTest, RefusesOnlyEmpty) {
  EXPECT_THAT(CheckNotEmpty("store", "memory"), IsOk());
  EXPECT_THAT(CheckNotEmpty("store", ""),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "--store must not be empty"));
}

TEST(FlagErrorsTest, ReportsEveryFailureWithItsSource) {
  FlagSources sources;
  sources.SetFromEnvironment("fc_threads", "FC_FC_THREADS");
  FlagErrors errors(&sources);
  EXPECT_TRUE(errors.Check(absl::OkStatus()));
  EXPECT_FALSE(errors.Check(CheckIntInRange("fc_threads", 0, 1, 8)));
  EXPECT_FALSE(errors.Check(CheckNotEmpty("fc_name", "")));
  EXPECT_THAT(errors.ToStatus(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "--fc_threads must be between 1 and 8; got 0 (from "
                       "FC_FC_THREADS); --fc_name must not be empty"));
  EXPECT_THAT(FlagErrors().ToStatus(), IsOk());
}

// ------------------------------------------------------------------ loading

// argv for the parsing functions, from strings that outlive it.
class Argv {
 public:
  explicit Argv(std::vector<std::string> args) : args_(std::move(args)) {
    args_.insert(args_.begin(), "program");
    for (std::string& arg : args_) pointers_.push_back(arg.data());
    pointers_.push_back(nullptr);
  }
  int argc() const { return static_cast<int>(args_.size()); }
  char** argv() { return pointers_.data(); }

 private:
  std::vector<std::string> args_;
  std::vector<char*> pointers_;
};

class FlagLoadingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : kVariables) unsetenv(name);
  }
  void TearDown() override {
    for (const char* name : kVariables) unsetenv(name);
  }

  absl::Status Parse(std::vector<std::string> args) {
    Argv argv(std::move(args));
    return ParseCommandLineFlags(argv.argc(), argv.argv(), &sources_);
  }

  static constexpr const char* kVariables[] = {"FC_FC_THREADS", "FC_FC_GRACE",
                                               "FC_FC_NAME", "FC_FC_VERBOSE"};
  const std::vector<std::string> flag_names_ = {"fc_threads", "fc_grace",
                                                "fc_name", "fc_verbose"};
  absl::FlagSaver saver_;
  FlagSources sources_;
};

TEST_F(FlagLoadingTest, CommandLineForms) {
  ASSERT_THAT(Parse({"--fc_threads=8", "-fc_name", "two words", "--fc_verbose",
                     "--fc_grace=1m30s"}),
              IsOk());
  EXPECT_EQ(absl::GetFlag(FLAGS_fc_threads), 8);
  EXPECT_EQ(absl::GetFlag(FLAGS_fc_name), "two words");
  EXPECT_TRUE(absl::GetFlag(FLAGS_fc_verbose));
  EXPECT_EQ(absl::GetFlag(FLAGS_fc_grace), absl::Seconds(90));
  ASSERT_THAT(Parse({"--nofc_verbose", "--"}), IsOk());
  EXPECT_FALSE(absl::GetFlag(FLAGS_fc_verbose));
  ASSERT_THAT(Parse({"--fc_verbose=true"}), IsOk());
  EXPECT_TRUE(absl::GetFlag(FLAGS_fc_verbose));
}

TEST_F(FlagLoadingTest, CommandLineErrorsNameTheFlag) {
  EXPECT_THAT(Parse({"--fc_threads=many"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--fc_threads cannot be 'many'")));
  EXPECT_THAT(Parse({"--fc_grace=10"}),  // A duration needs its unit.
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--fc_grace cannot be '10'")));
  EXPECT_THAT(Parse({"--fc_thread=1"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("unknown flag --fc_thread")));
  EXPECT_THAT(Parse({"--nofc_threads"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("unknown flag --nofc_threads")));
  EXPECT_THAT(Parse({"--fc_threads"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "--fc_threads needs a value"));
  EXPECT_THAT(Parse({"stray"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("unexpected argument 'stray'")));
  EXPECT_THAT(Parse({"--", "stray"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("unexpected argument 'stray'")));
  EXPECT_THAT(Parse({"--flagfile=/tmp/flags"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--flagfile is not supported")));
}

TEST_F(FlagLoadingTest, EnvironmentSetsFlagsAndIsRecorded) {
  setenv("FC_FC_THREADS", "6", 1);
  setenv("FC_FC_NAME", "from-env", 1);
  ASSERT_THAT(ApplyEnvironmentToFlags("FC_", flag_names_, &sources_), IsOk());
  EXPECT_EQ(absl::GetFlag(FLAGS_fc_threads), 6);
  EXPECT_EQ(absl::GetFlag(FLAGS_fc_name), "from-env");
  EXPECT_EQ(absl::GetFlag(FLAGS_fc_grace), absl::Seconds(10));  // Unset.
  EXPECT_EQ(sources_.EnvironmentVariable("fc_threads"), "FC_FC_THREADS");
  EXPECT_EQ(sources_.EnvironmentVariable("fc_grace"), "");
}

TEST_F(FlagLoadingTest, BadEnvironmentValuesNameVariableAndFlag) {
  setenv("FC_FC_THREADS", "lots", 1);
  setenv("FC_FC_GRACE", "soon", 1);
  absl::Status status = ApplyEnvironmentToFlags("FC_", flag_names_, &sources_);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument,
                               HasSubstr("--fc_threads cannot be set from "
                                         "FC_FC_THREADS='lots'")));
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument,
                               HasSubstr("--fc_grace cannot be set from "
                                         "FC_FC_GRACE='soon'")));
}

TEST_F(FlagLoadingTest, UnknownFlagNameIsAProgrammingError) {
  setenv("FC_NOT_A_FLAG", "1", 1);
  EXPECT_THAT(ApplyEnvironmentToFlags("FC_", {"not_a_flag"}, &sources_),
              StatusIs(absl::StatusCode::kInternal));
  unsetenv("FC_NOT_A_FLAG");
}

// .env supplies what the environment lacks; the environment beats .env; the
// command line beats both, and then errors no longer blame the variable.
TEST_F(FlagLoadingTest, DotEnvThenEnvironmentThenCommandLine) {
  const std::string path = chat::testing::MakeTempDir() + "/.env";
  std::ofstream(path) << "FC_FC_THREADS=2\nFC_FC_NAME=from-file\n"
                         "FC_FC_GRACE=1s\n";
  setenv("FC_FC_NAME", "from-env", 1);
  setenv("FC_FC_GRACE", "2s", 1);
  FlagLoadOptions options;
  options.env_prefix = "FC_";
  options.env_flags = flag_names_;
  options.usage = "flag_config_test";
  options.help_files = "flag_config_test";
  options.dotenv_path = path;
  Argv argv({"--fc_grace=3s"});
  absl::StatusOr<FlagSources> sources =
      LoadFlags(options, argv.argc(), argv.argv());
  ASSERT_THAT(sources, IsOk());
  EXPECT_EQ(absl::GetFlag(FLAGS_fc_threads), 2);               // .env
  EXPECT_EQ(absl::GetFlag(FLAGS_fc_name), "from-env");         // environment
  EXPECT_EQ(absl::GetFlag(FLAGS_fc_grace), absl::Seconds(3));  // command line
  EXPECT_EQ(sources->EnvironmentVariable("fc_threads"), "FC_FC_THREADS");
  EXPECT_EQ(sources->EnvironmentVariable("fc_grace"), "");
  EXPECT_THAT(sources->Annotate(CheckIntInRange("fc_threads", 2, 3, 4)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("(from FC_FC_THREADS)")));
  EXPECT_THAT(
      sources->Annotate(CheckIntInRange("fc_grace", 2, 3, 4)),
      StatusIs(absl::StatusCode::kInvalidArgument, Not(HasSubstr("(from"))));
}

TEST_F(FlagLoadingTest, LoadFlagsStopsAtABadEnvironmentValue) {
  setenv("FC_FC_THREADS", "x", 1);
  FlagLoadOptions options;
  options.env_prefix = "FC_";
  options.env_flags = flag_names_;
  options.dotenv_path = "";
  Argv argv({"--fc_threads=3"});
  EXPECT_THAT(
      LoadFlags(options, argv.argc(), argv.argv()),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("FC_FC_THREADS")));
}

}  // namespace
}  // namespace chat
