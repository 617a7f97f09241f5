#include "server/app/keys_command.h"

#include <algorithm>
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/time_format.h"
#include "server/app/config.h"
#include "server/service/admin_service_impl.h"
#include "server/service/api_key.h"
#include "server/store/conversation_store.h"

namespace chat {
namespace {

constexpr char kUsage[] =
    "usage:\n"
    "  chat-server keys create --tenant=NAME --name=NAME [--rpm=N] [--tpm=N]\n"
    "      [--max_streams=N] [--max_tokens=N] [--models=a,b]\n"
    "      [--budget_tokens=N --budget_period=day|month] [--expires=720h]\n"
    "  chat-server keys list [--tenant=NAME]\n"
    "  chat-server keys revoke ID\n"
    "chat-server's own flags (--store=..., or CHAT_STORE) pick the store.\n";

// The options of one subcommand, and what is left for chat-server's flags.
struct Invocation {
  std::string command;
  std::map<std::string, std::string> options;
  std::vector<std::string> positional;
  std::vector<std::string> server_args;  // argv[0] first.
};

const std::set<std::string>& OptionsOf(const std::string& command) {
  static const auto* const kCreate = new std::set<std::string>{
      "tenant",     "name",   "rpm",           "tpm",           "max_streams",
      "max_tokens", "models", "budget_tokens", "budget_period", "expires"};
  static const auto* const kList = new std::set<std::string>{"tenant"};
  static const auto* const kNone = new std::set<std::string>{};
  if (command == "create") return *kCreate;
  if (command == "list") return *kList;
  return *kNone;
}

absl::StatusOr<Invocation> Split(int argc, char** argv) {
  Invocation invocation;
  invocation.server_args.push_back(argv[0]);
  // The command is the first word; chat-server's flags may come before it.
  int command_index = 2;
  while (command_index < argc && absl::StartsWith(argv[command_index], "-")) {
    ++command_index;
  }
  if (command_index >= argc) {
    return absl::InvalidArgumentError("needs a command: create, list, revoke");
  }
  invocation.command = argv[command_index];
  if (invocation.command != "create" && invocation.command != "list" &&
      invocation.command != "revoke") {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown command '", invocation.command, "' (create, list, revoke)"));
  }
  const std::set<std::string>& options = OptionsOf(invocation.command);
  for (int i = 2; i < argc; ++i) {
    if (i == command_index) continue;
    absl::string_view arg = argv[i];
    if (!absl::StartsWith(arg, "-")) {
      invocation.positional.emplace_back(arg);
      continue;
    }
    absl::string_view body = arg;
    absl::ConsumePrefix(&body, "-");
    absl::ConsumePrefix(&body, "-");
    const size_t eq = body.find('=');
    const std::string name(body.substr(0, eq));
    if (options.count(name) == 0) {
      invocation.server_args.emplace_back(arg);  // chat-server's to judge.
      continue;
    }
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, " needs a value: --", name, "=VALUE"));
    }
    invocation.options[name] = std::string(body.substr(eq + 1));
  }
  if (invocation.command == "revoke" ? invocation.positional.size() != 1
                                     : !invocation.positional.empty()) {
    return absl::InvalidArgumentError(
        invocation.command == "revoke"
            ? "revoke needs exactly one key id"
            : absl::StrCat("unexpected argument '",
                           invocation.positional.front(), "'"));
  }
  return invocation;
}

// --NAME's value as a count >= 0 (0 when absent).
absl::StatusOr<int64_t> Count(const Invocation& invocation,
                              const std::string& name) {
  auto it = invocation.options.find(name);
  if (it == invocation.options.end()) return 0;
  int64_t value = 0;
  if (!absl::SimpleAtoi(it->second, &value) || value < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", name, " must be a whole number >= 0; got '", it->second, "'"));
  }
  return value;
}

std::string Option(const Invocation& invocation, const std::string& name) {
  auto it = invocation.options.find(name);
  return it == invocation.options.end() ? "" : it->second;
}

struct CreateSpec {
  std::string tenant;
  std::string name;
  store::KeyLimits limits;
  std::optional<absl::Duration> lifetime;
};

absl::StatusOr<CreateSpec> ParseCreate(const Invocation& invocation) {
  CreateSpec spec;
  spec.tenant = Option(invocation, "tenant");
  if (absl::Status s = ValidateTenant("--tenant", spec.tenant); !s.ok()) {
    return s;
  }
  spec.name = Option(invocation, "name");
  if (absl::Status s = ValidateKeyName("--name", spec.name); !s.ok()) return s;
  for (const auto& [flag, field] :
       std::vector<std::pair<std::string, int64_t store::KeyLimits::*>>{
           {"rpm", &store::KeyLimits::requests_per_minute},
           {"tpm", &store::KeyLimits::tokens_per_minute},
           {"max_streams", &store::KeyLimits::max_streams},
           {"max_tokens", &store::KeyLimits::max_tokens},
           {"budget_tokens", &store::KeyLimits::budget_tokens}}) {
    absl::StatusOr<int64_t> value = Count(invocation, flag);
    if (!value.ok()) return value.status();
    spec.limits.*field = *value;
  }
  if (const std::string models = Option(invocation, "models");
      !models.empty()) {
    for (absl::string_view model : absl::StrSplit(models, ',')) {
      if (model.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--models must be comma-separated names; got '", models, "'"));
      }
      spec.limits.allowed_models.emplace_back(model);
    }
  }
  const std::string period = Option(invocation, "budget_period");
  if (period == "day") {
    spec.limits.budget_period = store::BudgetPeriod::kDay;
  } else if (period == "month") {
    spec.limits.budget_period = store::BudgetPeriod::kMonth;
  } else if (!period.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--budget_period must be 'day' or 'month'; got '", period, "'"));
  }
  if (spec.limits.budget_tokens > 0 && period.empty()) {
    return absl::InvalidArgumentError(
        "--budget_tokens needs --budget_period=day|month");
  }
  if (spec.limits.budget_tokens == 0 && !period.empty()) {
    return absl::InvalidArgumentError(
        "--budget_period needs --budget_tokens=N (N > 0)");
  }
  if (const std::string expires = Option(invocation, "expires");
      !expires.empty() || invocation.options.count("expires") > 0) {
    absl::StatusOr<absl::Duration> lifetime =
        ParseKeyLifetime("--expires", expires);
    if (!lifetime.ok()) return lifetime.status();
    spec.lifetime = *lifetime;
  }
  return spec;
}

std::string LimitsSummary(const store::KeyLimits& limits) {
  std::vector<std::string> parts;
  if (limits.requests_per_minute > 0) {
    parts.push_back(absl::StrCat("rpm=", limits.requests_per_minute));
  }
  if (limits.tokens_per_minute > 0) {
    parts.push_back(absl::StrCat("tpm=", limits.tokens_per_minute));
  }
  if (limits.max_streams > 0) {
    parts.push_back(absl::StrCat("max_streams=", limits.max_streams));
  }
  if (limits.max_tokens > 0) {
    parts.push_back(absl::StrCat("max_tokens=", limits.max_tokens));
  }
  if (!limits.allowed_models.empty()) {
    parts.push_back(
        absl::StrCat("models=", absl::StrJoin(limits.allowed_models, ",")));
  }
  if (limits.budget_tokens > 0) {
    parts.push_back(absl::StrCat(
        "budget=", limits.budget_tokens, "/",
        limits.budget_period == store::BudgetPeriod::kMonth ? "month" : "day"));
  }
  return parts.empty() ? "-" : absl::StrJoin(parts, " ");
}

std::string TimeOrDash(absl::Time t) {
  return t == absl::InfiniteFuture() ? "-" : FormatTimestamp(t);
}

// A stored name as `keys list` prints it: names stored before names had to be
// printable are escaped, so none reaches the terminal raw.
std::string PrintableName(const std::string& name) {
  if (ValidateKeyName("name", name).ok()) return name;
  return absl::CHexEscape(name);
}

void PrintTable(const std::vector<std::vector<std::string>>& rows,
                std::ostream& out) {
  std::vector<size_t> widths;
  for (const std::vector<std::string>& row : rows) {
    widths.resize(std::max(widths.size(), row.size()), 0);
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  for (const std::vector<std::string>& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 2, ' ');
    }
    out << line << "\n";
  }
}

int Create(store::KeyStore& keys, const CreateSpec& spec, std::ostream& out,
           std::ostream& err) {
  const absl::Time now = absl::Now();
  const absl::Time expires_at =
      spec.lifetime.has_value() ? now + *spec.lifetime : absl::InfiniteFuture();
  absl::StatusOr<GeneratedApiKey> key = CreateStoredApiKey(
      keys, spec.tenant, spec.name, now, expires_at, spec.limits);
  if (!key.ok()) {
    err << "chat-server keys: cannot create the key: " << key.status() << "\n";
    return 1;
  }
  out << key->plaintext << std::endl;
  err << "created API key " << key->record.id << " for tenant "
      << key->record.tenant << " (name '" << key->record.name << "', expires "
      << TimeOrDash(key->record.expires_at) << ", limits "
      << LimitsSummary(key->record.limits)
      << "); the key above is shown only this once\n";
  return 0;
}

int List(store::KeyStore& keys, const std::string& tenant, std::ostream& out,
         std::ostream& err) {
  absl::StatusOr<std::vector<store::ApiKey>> list = keys.ListKeys(tenant);
  if (!list.ok()) {
    err << "chat-server keys: cannot list keys: " << list.status() << "\n";
    return 1;
  }
  std::vector<std::vector<std::string>> rows = {
      {"ID", "TENANT", "NAME", "CREATED", "EXPIRES", "REVOKED", "LIMITS"}};
  for (const store::ApiKey& key : *list) {
    rows.push_back({key.id, key.tenant, PrintableName(key.name),
                    FormatTimestamp(key.created_at), TimeOrDash(key.expires_at),
                    TimeOrDash(key.revoked_at), LimitsSummary(key.limits)});
  }
  PrintTable(rows, out);
  return 0;
}

int Revoke(store::KeyStore& keys, const std::string& id, std::ostream& out,
           std::ostream& err) {
  absl::StatusOr<bool> revoked =
      IsApiKeyId(id) ? keys.RevokeKey(id, absl::Now()) : false;
  if (!revoked.ok()) {
    err << "chat-server keys: cannot revoke " << id << ": " << revoked.status()
        << "\n";
    return 1;
  }
  if (!*revoked) {
    err << "chat-server keys: no API key with id '" << id << "'\n";
    return 1;
  }
  out << "revoked API key " << id
      << " (every replica refuses it within a few seconds)\n";
  return 0;
}

}  // namespace

int RunKeysCommand(int argc, char** argv, std::ostream& out,
                   std::ostream& err) {
  if (argc >= 3 &&
      (std::string(argv[2]) == "--help" || std::string(argv[2]) == "help")) {
    out << kUsage;
    return 0;
  }
  absl::StatusOr<Invocation> invocation = Split(argc, argv);
  if (!invocation.ok()) {
    err << "chat-server keys: " << invocation.status().message() << "\n"
        << kUsage;
    return 2;
  }
  std::optional<CreateSpec> spec;
  if (invocation->command == "create") {
    absl::StatusOr<CreateSpec> parsed = ParseCreate(*invocation);
    if (!parsed.ok()) {
      err << "chat-server keys: " << parsed.status().message() << "\n";
      return 2;
    }
    spec = *std::move(parsed);
  }
  const std::string tenant = Option(*invocation, "tenant");
  if (invocation->command == "list" && !tenant.empty()) {
    if (absl::Status s = ValidateTenant("--tenant", tenant); !s.ok()) {
      err << "chat-server keys: " << s.message() << "\n";
      return 2;
    }
  }

  std::vector<char*> server_argv;
  for (std::string& arg : invocation->server_args) {
    server_argv.push_back(arg.data());
  }
  server_argv.push_back(nullptr);
  absl::StatusOr<ServerConfig> config = ParseServerConfig(
      static_cast<int>(server_argv.size() - 1), server_argv.data());
  if (!config.ok()) {
    err << "chat-server: " << config.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<store::ConversationStore>> store =
      store::OpenConversationStore(config->store_url, config->store_options);
  if (!store.ok()) {
    err << "chat-server keys: cannot open store "
        << store::RedactStoreUrl(config->store_url) << ": " << store.status()
        << "\n";
    return 1;
  }
  store::KeyStore& keys = (*store)->keys();
  if (invocation->command == "create") return Create(keys, *spec, out, err);
  if (invocation->command == "list") return List(keys, tenant, out, err);
  return Revoke(keys, invocation->positional.front(), out, err);
}

int RunKeysCommand(int argc, char** argv) {
  return RunKeysCommand(argc, argv, std::cout, std::cerr);
}

}  // namespace chat
