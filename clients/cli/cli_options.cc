#include "clients/cli/cli_options.h"

#include <cstdlib>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "clients/cli/exit_codes.h"

namespace chat::cli {
namespace {

enum class Kind { kString, kBool, kDuration };

struct FlagSpec {
  absl::string_view name;
  Kind kind;
};

constexpr FlagSpec kFlags[] = {
    {"server", Kind::kString},      {"api_key", Kind::kString},
    {"tls", Kind::kBool},           {"ca_file", Kind::kString},
    {"client_cert", Kind::kString}, {"client_key", Kind::kString},
    {"server_name", Kind::kString}, {"timeout", Kind::kDuration},
    {"model", Kind::kString},       {"system", Kind::kString},
    {"session", Kind::kString},     {"json", Kind::kBool},
    {"help", Kind::kBool},          {"request_id", Kind::kString},
    {"markdown", Kind::kBool},      {"all", Kind::kBool},
    {"replace", Kind::kBool},       {"title", Kind::kString},
};

const FlagSpec* FindFlag(absl::string_view name) {
  for (const FlagSpec& flag : kFlags) {
    if (flag.name == name) return &flag;
  }
  return nullptr;
}

// Subcommands, whether they take a SESSION, and how many arguments may
// follow it (at least, at most) and what they are called.
struct CommandSpec {
  absl::string_view name;
  bool takes_session;
  size_t min_args = 0;
  size_t max_args = 0;
  absl::string_view args_usage = "";
};
constexpr CommandSpec kCommands[] = {
    {"history", true},
    {"reset", true},
    {"delete", true},
    {"sessions", false},
    {"stats", false},
    {"status", false},
    {"regenerate", true, 0, 1, "SESSION [TURN]"},
    {"edit", true, 2, 2, "SESSION TURN MESSAGE"},
    {"switch", true, 1, 1, "SESSION TURN"},
    {"cancel", true},
    {"resume", true, 0, 1, "SESSION [EVENT_ID]"},
};

const CommandSpec* FindCommand(absl::string_view name) {
  for (const CommandSpec& command : kCommands) {
    if (command.name == name) return &command;
  }
  return nullptr;
}

absl::Status Invalid(absl::string_view flag, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, " ", what));
}

// A key goes into an HTTP/2 header: visible ASCII only. The message never
// quotes the value.
absl::Status CheckApiKey(absl::string_view key) {
  for (char c : key) {
    if (c <= 0x20 || c >= 0x7f) {
      return Invalid("api_key",
                     "may hold only visible ASCII characters (no spaces or "
                     "line breaks)");
    }
  }
  return absl::OkStatus();
}

absl::Status SetFlag(const FlagSpec& flag, absl::string_view value,
                     CliOptions* options) {
  const absl::string_view name = flag.name;
  if (flag.kind == Kind::kBool) {
    bool on = false;
    if (value == "true" || value == "1") {
      on = true;
    } else if (value != "false" && value != "0") {
      return Invalid(name,
                     absl::StrCat("takes true or false; got '", value, "'"));
    }
    if (name == "tls") options->tls = on;
    if (name == "json") options->json = on;
    if (name == "markdown") options->markdown = on;
    if (name == "all") options->all = on;
    if (name == "replace") options->replace = on;
    if (name == "help" && on) options->mode = Mode::kHelp;
    return absl::OkStatus();
  }
  if (flag.kind == Kind::kDuration) {
    absl::Duration timeout;
    if (!absl::ParseDuration(value, &timeout) ||
        timeout < absl::ZeroDuration()) {
      return Invalid(name, absl::StrCat("takes a duration such as 30s or 5m "
                                        "(0s: no deadline); got '",
                                        value, "'"));
    }
    options->timeout = timeout;
    return absl::OkStatus();
  }
  std::string text(value);
  if (name == "server") {
    if (text.empty()) return Invalid(name, "needs HOST:PORT; got ''");
    options->server = std::move(text);
  } else if (name == "api_key") {
    absl::Status ok = CheckApiKey(text);
    if (!ok.ok()) return ok;
    options->api_key = std::move(text);
  } else if (name == "ca_file") {
    options->ca_file = std::move(text);
  } else if (name == "client_cert") {
    options->client_cert = std::move(text);
  } else if (name == "client_key") {
    options->client_key = std::move(text);
  } else if (name == "server_name") {
    options->server_name = std::move(text);
  } else if (name == "model") {
    options->model = std::move(text);
  } else if (name == "system") {
    options->system = std::move(text);
  } else if (name == "title") {
    options->title = std::move(text);
  } else if (name == "request_id") {
    if (text.empty()) return Invalid(name, "needs an id; got ''");
    options->request_id = std::move(text);
  } else if (name == "session") {
    if (text.empty()) return Invalid(name, "needs a session id; got ''");
    options->session = std::move(text);
  }
  return absl::OkStatus();
}

// The TLS flags hang together: files only with --tls, a certificate only
// with its key.
absl::Status CheckTls(const CliOptions& options) {
  if (!options.tls) {
    for (auto [flag, value] : {std::pair<absl::string_view, const std::string*>{
                                   "ca_file", &options.ca_file},
                               {"client_cert", &options.client_cert},
                               {"client_key", &options.client_key},
                               {"server_name", &options.server_name}}) {
      if (!value->empty()) return Invalid(flag, "needs --tls");
    }
  }
  if (options.client_cert.empty() != options.client_key.empty()) {
    return options.client_cert.empty()
               ? Invalid("client_key", "needs --client_cert (both or neither)")
               : Invalid("client_cert", "needs --client_key (both or neither)");
  }
  return absl::OkStatus();
}

}  // namespace

Environment ReadEnvironment() {
  Environment env;
  for (const char* name : {"CHAT_SERVER", "CHAT_API_KEY"}) {
    if (const char* value = std::getenv(name); value != nullptr) {
      env[name] = value;
    }
  }
  return env;
}

absl::StatusOr<CliOptions> ParseCliOptions(const std::vector<std::string>& args,
                                           const Environment& env,
                                           bool stdin_is_terminal) {
  CliOptions options;
  if (auto it = env.find("CHAT_SERVER");
      it != env.end() && !it->second.empty()) {
    options.server = it->second;
  }
  if (auto it = env.find("CHAT_API_KEY"); it != env.end()) {
    std::string key(absl::StripAsciiWhitespace(it->second));
    if (!CheckApiKey(key).ok()) {
      return absl::InvalidArgumentError(
          "CHAT_API_KEY may hold only visible ASCII characters (no spaces or "
          "line breaks)");
    }
    options.api_key = std::move(key);
  }

  std::vector<std::string> positional;
  bool flags_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (flags_done || arg == "-" || !absl::StartsWith(arg, "-")) {
      positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_done = true;
      continue;
    }
    if (arg == "-h") {
      options.mode = Mode::kHelp;
      continue;
    }
    // "-s=X" and "-s X" are the session; everything else is --name or -name.
    std::string name;
    std::optional<std::string> value;
    absl::string_view body;
    if (arg == "-s") {
      name = "session";
    } else if (absl::StartsWith(arg, "-s=")) {
      name = "session";
      value = arg.substr(3);
    } else {
      body = absl::StripPrefix(absl::StripPrefix(arg, "-"), "-");
      size_t eq = body.find('=');
      name = std::string(body.substr(0, eq));
      if (eq != absl::string_view::npos)
        value = std::string(body.substr(eq + 1));
    }
    const FlagSpec* flag = FindFlag(name);
    if (flag == nullptr && absl::StartsWith(name, "no") && !value.has_value()) {
      const FlagSpec* negated = FindFlag(absl::string_view(name).substr(2));
      if (negated != nullptr && negated->kind == Kind::kBool) {
        absl::Status set = SetFlag(*negated, "false", &options);
        if (!set.ok()) return set;
        continue;
      }
    }
    if (flag == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag ", arg.substr(0, arg.find('=')),
                       " (chat-cli --help lists the flags)"));
    }
    if (!value.has_value()) {
      if (flag->kind == Kind::kBool) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return Invalid(flag->name, "needs a value");
      }
    }
    absl::Status set = SetFlag(*flag, *value, &options);
    if (!set.ok()) return set;
  }
  if (options.mode == Mode::kHelp) return options;
  absl::Status tls = CheckTls(options);
  if (!tls.ok()) return tls;

  if (positional.empty()) {
    options.mode = stdin_is_terminal ? Mode::kRepl : Mode::kChat;
    if (options.mode == Mode::kRepl && options.json) {
      return Invalid("json",
                     "needs a message or a subcommand, not the "
                     "interactive prompt");
    }
    return options;
  }
  // export SESSION [--markdown] | export --all; import FILE.
  if (positional[0] == "export" || positional[0] == "import") {
    options.mode = Mode::kCommand;
    options.command = positional[0];
    if (positional[0] == "import") {
      if (positional.size() != 2) {
        return absl::InvalidArgumentError(
            "import takes one FILE (an export, or JSON lines of them; - reads "
            "stdin)");
      }
      options.command_text = positional[1];
      return options;
    }
    if (options.all ? positional.size() != 1 : positional.size() > 2) {
      return absl::InvalidArgumentError(
          "export takes one SESSION, or --all and no SESSION");
    }
    if (options.all && options.markdown) {
      return Invalid("markdown", "exports one SESSION, not --all");
    }
    if (!options.all) {
      options.command_session =
          positional.size() == 2 ? positional[1] : options.session;
      if (options.command_session.empty()) {
        return absl::InvalidArgumentError(
            "export needs a SESSION (chat-cli export SESSION), or --all");
      }
    }
    return options;
  }
  // new [SESSION]: an empty session; no SESSION (nor -s): the server names
  // it.
  if (positional[0] == "new") {
    options.mode = Mode::kCommand;
    options.command = "new";
    if (positional.size() > 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          "new takes at most one SESSION; got '", positional[2], "' too"));
    }
    options.command_session =
        positional.size() == 2 ? positional[1] : options.session;
    return options;
  }
  // The two commands that take text: rename SESSION TITLE, search QUERY.
  if (positional[0] == "rename" || positional[0] == "search") {
    options.mode = Mode::kCommand;
    options.command = positional[0];
    const bool rename = positional[0] == "rename";
    const size_t wanted = rename ? 3 : 2;
    if (positional.size() != wanted) {
      return absl::InvalidArgumentError(
          rename ? "rename takes SESSION and TITLE (chat-cli rename SESSION "
                   "\"New title\"; \"\" clears it)"
                 : "search takes one QUERY (quote it: chat-cli search "
                   "\"some words\")");
    }
    if (rename) options.command_session = positional[1];
    options.command_text = positional[wanted - 1];
    return options;
  }
  if (const CommandSpec* command = FindCommand(positional[0])) {
    options.mode = Mode::kCommand;
    options.command = std::string(command->name);
    const size_t extra = positional.size() - 1;
    if (!command->takes_session) {
      if (extra > 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            command->name, " takes no argument; got '", positional[1], "'"));
      }
      return options;
    }
    if (command->max_args > 0) {
      // SESSION comes first and is required here: TURN alone would be
      // ambiguous with it.
      if (extra < 1 + command->min_args || extra > 1 + command->max_args) {
        return absl::InvalidArgumentError(absl::StrCat(
            command->name, " takes ", command->args_usage, " (chat-cli ",
            command->name, " ", command->args_usage, ")"));
      }
      options.command_session = positional[1];
      options.command_args.assign(positional.begin() + 2, positional.end());
      return options;
    }
    if (extra > 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          command->name, " takes one SESSION; got '", positional[2], "' too"));
    }
    options.command_session = extra == 1 ? positional[1] : options.session;
    if (options.command_session.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(command->name, " needs a SESSION (chat-cli ",
                       command->name, " SESSION)"));
    }
    return options;
  }
  if (positional.size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unexpected argument '", positional[1],
        "': chat-cli takes one message (quote it) or a subcommand"));
  }
  options.mode = Mode::kChat;
  // "-" reads the message from stdin, as no argument does off a terminal.
  if (positional[0] != "-") options.message = positional[0];
  return options;
}

std::string UsageText() {
  return absl::StrCat(
      "chat-cli: talk to a chat-server from the terminal.\n"
      "\n"
      "Usage:\n"
      "  chat-cli [FLAGS] \"MESSAGE\" [-s SESSION]   stream one reply "
      "(MESSAGE '-' or\n"
      "                                           none off a terminal: "
      "read stdin)\n"
      "  chat-cli [FLAGS]                         interactive prompt "
      "(stdin a terminal)\n"
      "  chat-cli [FLAGS] new [SESSION]           create an empty session "
      "(--system,\n"
      "                                           --title); prints its id\n"
      "  chat-cli [FLAGS] history SESSION         stored messages of a "
      "session\n"
      "  chat-cli [FLAGS] sessions                sessions, most recent "
      "first\n"
      "  chat-cli [FLAGS] reset SESSION           drop a session's "
      "messages, keep it\n"
      "  chat-cli [FLAGS] delete SESSION          delete a session\n"
      "  chat-cli [FLAGS] resume SESSION [EVENT_ID]  follow a session's "
      "running answer\n"
      "                                           (from after EVENT_ID; none: "
      "from its start)\n"
      "  chat-cli [FLAGS] cancel SESSION          stop a session's running "
      "streamed answer\n"
      "  chat-cli [FLAGS] stats                   counts of sessions, "
      "messages, tokens\n"
      "  chat-cli [FLAGS] status                  is the service up\n"
      "  chat-cli [FLAGS] rename SESSION TITLE    set a session's title\n"
      "  chat-cli [FLAGS] search QUERY            messages matching QUERY, "
      "best first\n"
      "  chat-cli [FLAGS] regenerate SESSION [TURN]  a new answer to a turn "
      "(default:\n"
      "                                           the last); the old one "
      "stays\n"
      "  chat-cli [FLAGS] edit SESSION TURN MESSAGE  a new version of a "
      "turn's message\n"
      "                                           and a new answer\n"
      "  chat-cli [FLAGS] export SESSION [--markdown]  a session, every "
      "branch, as JSON\n"
      "                                           (--markdown: the active "
      "branch)\n"
      "  chat-cli [FLAGS] export --all            every session, one JSON "
      "line each\n"
      "  chat-cli [FLAGS] import FILE [--replace] sessions from an export "
      "or JSON lines\n"
      "                                           (- reads stdin)\n"
      "  chat-cli [FLAGS] switch SESSION TURN     show the branch through "
      "TURN (history\n"
      "                                           names turns and their "
      "versions)\n"
      "\n"
      "Flags (--name=value or --name value):\n"
      "  -s, --session ID   the conversation (default: a new cli-XXXXXXXX, "
      "printed on\n"
      "                     stderr)\n"
      "  --server ADDR      HOST:PORT of chat-server (default "
      "localhost:50051;\n"
      "                     env CHAT_SERVER)\n"
      "  --api_key KEY      sent as 'authorization: Bearer KEY' (env "
      "CHAT_API_KEY;\n"
      "                     never printed)\n"
      "  --tls              connect over TLS (system CAs unless "
      "--ca_file)\n"
      "  --ca_file PEM      CAs to trust for the server's certificate\n"
      "  --client_cert PEM  certificate for mutual TLS (with "
      "--client_key)\n"
      "  --client_key PEM   its private key\n"
      "  --server_name NAME name to check in the server's certificate\n"
      "  --timeout DUR      deadline of each call, e.g. 30s, 5m (default "
      "5m; 0s: none)\n"
      "  --model NAME       model to ask (default: the server's)\n"
      "  --system TEXT      system prompt of a new session\n"
      "  --title TEXT       new: the session's title\n"
      "  --request_id ID    make a one-shot message idempotent: a retry with "
      "the same\n"
      "                     id gets the stored answer (not for the prompt)\n"
      "  --markdown, --all  export: Markdown; every session\n"
      "  --replace          import: overwrite a session with the same id\n"
      "  --json             print the response as JSON (proto field "
      "names)\n"
      "  -h, --help         this text\n"
      "\n"
      "Interactive prompt: /reset, /history, /sessions, /model NAME, "
      "/system TEXT,\n"
      "/help, /quit. Ctrl-C stops a reply (cancelled on the server too); "
      "Ctrl-C at\n"
      "the prompt, or twice during a reply, exits. Ctrl-D exits.\n"
      "\n"
      "Exit codes:\n",
      ExitCodeTable());
}

}  // namespace chat::cli
