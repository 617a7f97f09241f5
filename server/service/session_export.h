#ifndef CHAT_SERVER_SERVICE_SESSION_EXPORT_H_
#define CHAT_SERVER_SERVICE_SESSION_EXPORT_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "chat/v1/chat.pb.h"
#include "server/store/session_archive.h"

namespace chat {

// The export format this build writes, and the newest it imports.
inline constexpr int kSessionExportFormatVersion = 1;

// What ImportSession accepts besides the request size gRPC enforces: enough
// for any session this service stores (its replies can be far longer than
// the user messages --max_message_bytes bounds), small enough that one
// import cannot hold the store's writer for long.
inline constexpr size_t kMaxImportedTurns = 10000;
inline constexpr size_t kMaxImportedMessageBytes = 1 << 20;
inline constexpr size_t kMaxImportedSystemPromptBytes = 16 * 1024;

// `archive` as the API shows it: every message of every branch, by turn id,
// user before assistant, times in RFC 3339 with microseconds. The same
// archive always gives the same message, whichever store it came from.
chat::v1::SessionExport ToSessionExport(const store::SessionArchive& archive);

// The archive `session` describes, checked: format version, session id,
// title, times, each message's turn, parent, role, timestamp and size, the
// active turn. kInvalidArgument naming the field as the REST body spells it
// ("session.messages[3].parent_turn_id: ...") otherwise.
absl::StatusOr<store::SessionArchive> FromSessionExport(
    const chat::v1::SessionExport& session);

// The active branch of `archive` as Markdown: the title (or the session id)
// as a heading, the system prompt quoted, then each message under a heading
// naming its role. Message text is kept as written (replies are usually
// Markdown already).
std::string RenderSessionMarkdown(const store::SessionArchive& archive);

}  // namespace chat

#endif  // CHAT_SERVER_SERVICE_SESSION_EXPORT_H_
