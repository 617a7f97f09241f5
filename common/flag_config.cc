#include "common/flag_config.h"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <utility>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/dotenv.h"
#include "common/logging.h"

namespace chat {
namespace {

// Abseil's usage flags (absl/flags/internal/usage.cc). They are not
// registered flags, so Abseil's own parser has to see them.
bool IsUsageFlag(absl::string_view name) {
  return absl::StartsWith(name, "help") || name == "version" ||
         name == "only_check_args";
}

// Abseil's built-in flags that read configuration from elsewhere; this
// project reads it from the environment and .env only, so one path is
// documented and validated.
bool IsUnsupportedBuiltin(absl::string_view name) {
  return name == "flagfile" || name == "fromenv" || name == "tryfromenv" ||
         name == "undefok";
}

// Splits "--name=value" / "-name" into its name and (optional) value;
// false if `arg` is not a flag.
bool SplitFlag(absl::string_view arg, absl::string_view* name,
               absl::string_view* value, bool* has_value) {
  if (arg.size() < 2 || arg[0] != '-') return false;
  arg.remove_prefix(arg[1] == '-' ? 2 : 1);
  const size_t equals = arg.find('=');
  *has_value = equals != absl::string_view::npos;
  *name = arg.substr(0, equals);
  *value = *has_value ? arg.substr(equals + 1) : absl::string_view();
  return !name->empty();
}

bool WantsUsage(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") return false;
    absl::string_view name, value;
    bool has_value = false;
    if (SplitFlag(arg, &name, &value, &has_value) && IsUsageFlag(name)) {
      return true;
    }
  }
  return false;
}

void InstallUsageOnce(const FlagLoadOptions& options) {
  // Abseil refuses a second usage message; tests may load flags twice.
  static std::once_flag once;
  std::call_once(once, [&options] {
    absl::FlagsUsageConfig config;
    config.contains_help_flags =
        [files = options.help_files](absl::string_view file) {
          return absl::StrContains(file, files);
        };
    absl::SetFlagsUsageConfig(config);
    absl::SetProgramUsageMessage(options.usage);
  });
}

}  // namespace

void FlagSources::SetFromEnvironment(const std::string& flag,
                                     const std::string& variable) {
  variables_[flag] = variable;
}

void FlagSources::SetFromCommandLine(const std::string& flag) {
  variables_.erase(flag);
}

std::string FlagSources::EnvironmentVariable(absl::string_view flag) const {
  auto it = variables_.find(flag);
  return it == variables_.end() ? "" : it->second;
}

absl::Status FlagSources::Annotate(const absl::Status& status) const {
  absl::string_view message = status.message();
  if (status.ok() || !absl::ConsumePrefix(&message, "--")) return status;
  const std::string variable =
      EnvironmentVariable(message.substr(0, message.find(' ')));
  if (variable.empty()) return status;
  return absl::Status(status.code(),
                      absl::StrCat(status.message(), " (from ", variable, ")"));
}

absl::Status ApplyEnvironmentToFlags(absl::string_view prefix,
                                     const std::vector<std::string>& flag_names,
                                     FlagSources* sources) {
  std::vector<std::string> errors;
  for (const std::string& name : flag_names) {
    const std::string variable =
        absl::StrCat(prefix, absl::AsciiStrToUpper(name));
    const char* value = std::getenv(variable.c_str());
    if (value == nullptr) continue;
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr) {
      return absl::InternalError(absl::StrCat("no flag --", name));
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      errors.push_back(absl::StrCat("--", name, " cannot be set from ",
                                    variable, "='", value, "': ", error));
      continue;
    }
    sources->SetFromEnvironment(name, variable);
  }
  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(errors, "; "));
}

absl::Status ParseCommandLineFlags(int argc, char** argv,
                                   FlagSources* sources) {
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == "--") {
      if (i + 1 < argc) {
        return absl::InvalidArgumentError(
            absl::StrCat("unexpected argument '", argv[i + 1], "'"));
      }
      break;
    }
    absl::string_view name, value;
    bool has_value = false;
    if (!SplitFlag(arg, &name, &value, &has_value)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unexpected argument '", arg, "' (flags are --NAME=VALUE)"));
    }
    if (IsUnsupportedBuiltin(name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--", name,
          " is not supported; set flags in the environment or in .env"));
    }
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    std::string value_text(value);
    if (flag == nullptr && !has_value && absl::StartsWith(name, "no")) {
      // --nofoo for a boolean flag foo.
      flag = absl::FindCommandLineFlag(name.substr(2));
      if (flag != nullptr && flag->IsOfType<bool>()) {
        value_text = "false";
        has_value = true;
      } else {
        flag = nullptr;
      }
    }
    if (flag == nullptr || flag->IsRetired()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, " (see --help)"));
    }
    if (!has_value) {
      if (flag->IsOfType<bool>()) {
        value_text = "true";
      } else if (i + 1 < argc) {
        value_text = argv[++i];
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("--", flag->Name(), " needs a value"));
      }
    }
    std::string error;
    if (!flag->ParseFrom(value_text, &error)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--", flag->Name(), " cannot be '", value_text, "': ", error));
    }
    sources->SetFromCommandLine(std::string(flag->Name()));
  }
  return absl::OkStatus();
}

absl::StatusOr<FlagSources> LoadFlags(const FlagLoadOptions& options, int argc,
                                      char** argv) {
  InstallUsageOnce(options);
  // Like the Python template (python-dotenv): a .env in the working
  // directory supplies variables the environment lacks. Only names are
  // logged: values may be keys.
  if (!options.dotenv_path.empty()) {
    if (absl::StatusOr<std::vector<std::string>> loaded =
            LoadDotEnvFile(options.dotenv_path);
        loaded.ok() && !loaded->empty()) {
      LogInfo("loaded ", absl::StrJoin(*loaded, ", "), " from ",
              options.dotenv_path);
    }
  }
  FlagSources sources;
  if (absl::Status status = ApplyEnvironmentToFlags(
          options.env_prefix, options.env_flags, &sources);
      !status.ok()) {
    return status;
  }
  // Abseil prints usage (with the values the environment set) and exits.
  if (WantsUsage(argc, argv)) absl::ParseCommandLine(argc, argv);
  if (absl::Status status = ParseCommandLineFlags(argc, argv, &sources);
      !status.ok()) {
    return status;
  }
  return sources;
}

absl::Status CheckIntInRange(absl::string_view flag, int64_t value, int64_t lo,
                             int64_t hi) {
  if (value >= lo && value <= hi) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "--", flag, " must be between ", lo, " and ", hi, "; got ", value));
}

absl::Status CheckDurationInRange(absl::string_view flag, absl::Duration value,
                                  absl::Duration lo, absl::Duration hi) {
  if (value >= lo && value <= hi) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "--", flag, " must be between ", absl::FormatDuration(lo), " and ",
      absl::FormatDuration(hi), "; got ", absl::FormatDuration(value)));
}

absl::Status CheckNotEmpty(absl::string_view flag, absl::string_view value) {
  if (!value.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, " must not be empty"));
}

absl::Status CheckOneOf(absl::string_view flag, absl::string_view value,
                        std::initializer_list<absl::string_view> accepted) {
  for (absl::string_view candidate : accepted) {
    if (value == candidate) return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat("--", flag, " must be one of ",
                                                 absl::StrJoin(accepted, ", "),
                                                 "; got '", value, "'"));
}

absl::StatusOr<HostPort> ParseHostPort(absl::string_view flag,
                                       absl::string_view value) {
  auto error = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, " must be HOST:PORT with a port between 0 and 65535; got '",
        value, "'"));
  };
  const size_t colon = value.rfind(':');
  if (colon == absl::string_view::npos) return error();
  absl::string_view host = value.substr(0, colon);
  const absl::string_view port_text = value.substr(colon + 1);
  // SimpleAtoi takes a sign and surrounding spaces; a port is digits only.
  if (port_text.empty() || port_text.size() > 5 ||
      !std::all_of(port_text.begin(), port_text.end(), absl::ascii_isdigit)) {
    return error();
  }
  HostPort parsed;
  if (!absl::SimpleAtoi(port_text, &parsed.port) || parsed.port > 65535) {
    return error();
  }
  if (absl::StartsWith(host, "[")) {
    if (!absl::ConsumeSuffix(&host, "]")) return error();
    host.remove_prefix(1);
    if (host.empty()) return error();
  } else if (absl::StrContains(host, ':')) {
    return error();  // An IPv6 literal needs its brackets.
  }
  parsed.host = std::string(host);
  return parsed;
}

bool FlagErrors::Check(const absl::Status& status) {
  if (status.ok()) return true;
  const absl::Status annotated =
      sources_ == nullptr ? status : sources_->Annotate(status);
  messages_.emplace_back(annotated.message());
  return false;
}

absl::Status FlagErrors::ToStatus() const {
  if (messages_.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(messages_, "; "));
}

}  // namespace chat
