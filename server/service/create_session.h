#ifndef CHAT_SERVER_SERVICE_CREATE_SESSION_H_
#define CHAT_SERVER_SERVICE_CREATE_SESSION_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "chat/v1/chat.pb.h"
#include "server/engine/validation.h"
#include "server/store/session_archive.h"

namespace chat {

// Characters after the prefix of a session id the server makes.
inline constexpr int kNewSessionIdRandomChars = 24;

// A fresh session id: "s-" and kNewSessionIdRandomChars random characters
// of [a-z0-9] (about 124 bits, from the OS's random device), so it passes
// ValidateSessionId and never needs escaping in a URL path. Thread-safe.
std::string NewSessionId();

// The archive of the empty session `request` asks for, created at `now`:
// its id (`request.session_id`, else NewSessionId()), its system prompt
// (`request.system_prompt`, else `default_system_prompt`), its title
// (trimmed, as UpdateSession takes it), no turns. kInvalidArgument naming
// the field for a bad id, a system prompt over `limits` or with a NUL byte,
// or a bad title.
absl::StatusOr<store::SessionArchive> EmptySessionFor(
    const chat::v1::CreateSessionRequest& request,
    const std::string& default_system_prompt, const RequestLimits& limits,
    absl::Time now);

}  // namespace chat

#endif  // CHAT_SERVER_SERVICE_CREATE_SESSION_H_
