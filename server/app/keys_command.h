#ifndef CHAT_SERVER_APP_KEYS_COMMAND_H_
#define CHAT_SERVER_APP_KEYS_COMMAND_H_

// `chat-server keys ...`: API keys managed from the command line on the
// store the server is configured with (--store, CHAT_STORE or ./.env), so a
// fresh deployment can make its first key before anything listens.
//
//   chat-server keys create --tenant=T --name=N [--rpm=N] [--tpm=N]
//       [--max_streams=N] [--max_tokens=N] [--models=a,b]
//       [--budget_tokens=N --budget_period=day|month] [--expires=720h]
//     prints the key (once: it cannot be read back) alone on stdout, and
//     "created API key ID for tenant T ..." on stderr.
//   chat-server keys list [--tenant=T]
//     prints a table of keys: id, tenant, name, created, expires, revoked,
//     limits. Never a secret or a hash.
//   chat-server keys revoke ID
//
// Every other flag is chat-server's own (--store=..., --store_connections).
// Exit codes: 0 done; 1 the store failed or `revoke` named an unknown key;
// 2 bad usage or a bad flag (named in the message).

#include <ostream>

namespace chat {

// Runs the command in `argv` (argv[1] is "keys"), writing to `out` and `err`.
int RunKeysCommand(int argc, char** argv, std::ostream& out, std::ostream& err);

// The same on stdout and stderr.
int RunKeysCommand(int argc, char** argv);

}  // namespace chat

#endif  // CHAT_SERVER_APP_KEYS_COMMAND_H_
