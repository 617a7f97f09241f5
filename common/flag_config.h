#ifndef CHAT_COMMON_FLAG_CONFIG_H_
#define CHAT_COMMON_FLAG_CONFIG_H_

// The one path by which a binary's configuration is read: a `.env` file, then
// PREFIX<NAME> environment variables, then the command line (each later source
// wins), followed by validation of every value into a config struct. Parsing
// never exits the process (except for --help and friends, which Abseil
// prints); errors come back as absl::InvalidArgumentError naming the flag, so
// main can print them and exit 2.

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace chat {

// Where each flag that an environment variable set got its value, so an error
// about --store_threads can say it came from CHAT_STORE_THREADS. Flags set on
// the command line or left at their default are not recorded.
class FlagSources {
 public:
  void SetFromEnvironment(const std::string& flag, const std::string& variable);
  // The command line overrides the environment: forgets `flag`'s variable.
  void SetFromCommandLine(const std::string& flag);
  // The variable that set `flag`, or "" if none did.
  std::string EnvironmentVariable(absl::string_view flag) const;
  // `status` with " (from CHAT_X)" appended when its message is about a flag
  // (begins "--NAME ") that an environment variable set. OK passes through.
  absl::Status Annotate(const absl::Status& status) const;

 private:
  std::map<std::string, std::string, std::less<>> variables_;
};

// Sets each flag in `flag_names` whose environment variable PREFIX<NAME IN
// CAPITALS> is present, recording it in `sources`. INVALID_ARGUMENT naming
// every variable (and its flag) whose value does not parse; INTERNAL if a name
// is not a registered flag (a programming error).
absl::Status ApplyEnvironmentToFlags(absl::string_view prefix,
                                     const std::vector<std::string>& flag_names,
                                     FlagSources* sources);

// Parses `argv` (argv[0] is the program) as Abseil does: `--name=value`,
// `--name value`, `-name=value`, `--bool_flag`, `--nobool_flag`, and `--`
// ending the flags. Unlike absl::ParseCommandLine it does not exit:
// INVALID_ARGUMENT for an unknown flag, a value that does not parse, a missing
// value, a positional argument, or Abseil's --flagfile/--fromenv family (the
// environment and .env are this project's way). Usage flags (--help,
// --helpfull, --version, ...) are not handled here; see LoadFlags.
absl::Status ParseCommandLineFlags(int argc, char** argv, FlagSources* sources);

// What LoadFlags needs to know about one binary.
struct FlagLoadOptions {
  // Prefix of the environment variables, e.g. "CHAT_" or "CHAT_GATEWAY_".
  std::string env_prefix;
  // The flags that may be set from the environment.
  std::vector<std::string> env_flags;
  // --help: the program's usage message, and a substring of the source paths
  // whose flags it lists (so linked libraries' flags stay out of it).
  std::string usage;
  std::string help_files;
  // Read before the environment, for the variables it lacks; "" for none.
  std::string dotenv_path = "./.env";
};

// The whole sequence for a binary's main: installs the usage message (once
// per process), loads `.env` (logging the names it set, never the values),
// applies the environment, then the command line. If argv asks for usage
// (--help and Abseil's other usage flags) Abseil prints it and exits, as
// before. Returns where values came from, for FlagSources::Annotate.
absl::StatusOr<FlagSources> LoadFlags(const FlagLoadOptions& options, int argc,
                                      char** argv);

// Validation helpers. Each returns OK or an INVALID_ARGUMENT whose message
// begins with "--FLAG " and states what is accepted and what was given, e.g.
// "--store_threads must be between 1 and 256; got 0".

absl::Status CheckIntInRange(absl::string_view flag, int64_t value, int64_t lo,
                             int64_t hi);
absl::Status CheckDurationInRange(absl::string_view flag, absl::Duration value,
                                  absl::Duration lo, absl::Duration hi);
absl::Status CheckNotEmpty(absl::string_view flag, absl::string_view value);
absl::Status CheckOneOf(absl::string_view flag, absl::string_view value,
                        std::initializer_list<absl::string_view> accepted);

// A listening address split into its parts.
struct HostPort {
  // As written, without the brackets of an IPv6 literal; may be empty (":0"
  // means every interface, as gRPC and Asio read it).
  std::string host;
  int port = 0;
};

// Parses "HOST:PORT", "[IPV6]:PORT" or ":PORT" with PORT in 0..65535 (0:
// the OS picks one).
absl::StatusOr<HostPort> ParseHostPort(absl::string_view flag,
                                       absl::string_view value);

// Collects validation failures so that one run reports every bad flag.
class FlagErrors {
 public:
  explicit FlagErrors(const FlagSources* sources = nullptr)
      : sources_(sources) {}

  // Keeps `status` (annotated with its source) if it is an error; returns
  // whether it was OK.
  bool Check(const absl::Status& status);

  // OK, or one INVALID_ARGUMENT with every failure, joined by "; ".
  absl::Status ToStatus() const;

 private:
  const FlagSources* sources_;
  std::vector<std::string> messages_;
};

}  // namespace chat

#endif  // CHAT_COMMON_FLAG_CONFIG_H_
