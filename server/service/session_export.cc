#include "server/service/session_export.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/time_format.h"
#include "server/engine/session_titler.h"
#include "server/engine/validation.h"

namespace chat {
namespace {

absl::Status FieldError(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

// An RFC 3339 time, kept at the microseconds the stores keep.
absl::StatusOr<absl::Time> ParseTimestamp(absl::string_view field,
                                          const std::string& text) {
  absl::Time t;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &error)) {
    return FieldError(
        field, absl::StrCat("not an RFC 3339 time (\"", text, "\"): ", error));
  }
  return absl::FromUnixMicros(absl::ToUnixMicros(t));
}

}  // namespace

chat::v1::SessionExport ToSessionExport(const store::SessionArchive& archive) {
  chat::v1::SessionExport out;
  out.set_format_version(kSessionExportFormatVersion);
  out.set_session_id(archive.session_id);
  out.set_title(archive.title);
  out.set_system_prompt(archive.system_prompt);
  out.set_created_at(FormatTimestamp(archive.created_at));
  out.set_updated_at(FormatTimestamp(archive.updated_at));
  out.set_active_turn_id(archive.active_turn_id);
  out.mutable_messages()->Reserve(static_cast<int>(2 * archive.turns.size()));
  for (const store::ArchivedTurn& turn : archive.turns) {
    const std::string timestamp = FormatTimestamp(turn.created_at);
    chat::v1::ExportedMessage* user = out.add_messages();
    user->set_turn_id(turn.turn_id);
    user->set_parent_turn_id(turn.parent_turn_id);
    user->set_role("user");
    user->set_content(turn.user_message);
    user->set_timestamp(timestamp);
    chat::v1::ExportedMessage* assistant = out.add_messages();
    assistant->set_turn_id(turn.turn_id);
    assistant->set_parent_turn_id(turn.parent_turn_id);
    assistant->set_role("assistant");
    assistant->set_content(turn.assistant_message);
    assistant->set_timestamp(timestamp);
    assistant->set_model(turn.model);
    assistant->set_stop_reason(turn.stop_reason);
    assistant->mutable_usage()->set_input_tokens(
        static_cast<int32_t>(turn.input_tokens));
    assistant->mutable_usage()->set_output_tokens(
        static_cast<int32_t>(turn.output_tokens));
    if (turn.cost_usd.has_value()) assistant->set_cost_usd(*turn.cost_usd);
  }
  return out;
}

absl::StatusOr<store::SessionArchive> FromSessionExport(
    const chat::v1::SessionExport& session) {
  if (session.format_version() != kSessionExportFormatVersion) {
    return FieldError("session.format_version",
                      absl::StrCat("must be ", kSessionExportFormatVersion,
                                   ", got ", session.format_version()));
  }
  if (absl::Status s = ValidateSessionId(session.session_id()); !s.ok()) {
    return FieldError("session.session_id", s.message());
  }
  store::SessionArchive archive;
  archive.session_id = session.session_id();
  absl::StatusOr<std::string> title = NormalizeTitle(session.title());
  if (!title.ok()) return FieldError("session.title", title.status().message());
  archive.title = *std::move(title);
  if (session.system_prompt().size() > kMaxImportedSystemPromptBytes) {
    return FieldError(
        "session.system_prompt",
        absl::StrCat("at most ", kMaxImportedSystemPromptBytes, " bytes, got ",
                     session.system_prompt().size()));
  }
  archive.system_prompt = session.system_prompt();
  absl::StatusOr<absl::Time> created =
      ParseTimestamp("session.created_at", session.created_at());
  if (!created.ok()) return created.status();
  archive.created_at = *created;
  absl::StatusOr<absl::Time> updated =
      ParseTimestamp("session.updated_at", session.updated_at());
  if (!updated.ok()) return updated.status();
  archive.updated_at = *updated;

  const int count = session.messages_size();
  if (static_cast<size_t>(count) > 2 * kMaxImportedTurns) {
    return FieldError("session.messages",
                      absl::StrCat("at most ", 2 * kMaxImportedTurns,
                                   " messages, got ", count));
  }
  if (count % 2 != 0) {
    return FieldError("session.messages",
                      "each turn needs a user and an assistant message; the "
                      "last turn has only one");
  }
  archive.turns.reserve(static_cast<size_t>(count / 2));
  for (int i = 0; i < count; ++i) {
    const chat::v1::ExportedMessage& m = session.messages(i);
    const std::string field = absl::StrCat("session.messages[", i, "]");
    const int turn_id = i / 2 + 1;
    const bool is_user = i % 2 == 0;
    if (m.role() != (is_user ? "user" : "assistant")) {
      return FieldError(
          absl::StrCat(field, ".role"),
          absl::StrCat("must be \"", is_user ? "user" : "assistant",
                       "\" (each turn is a user then an assistant message), "
                       "got \"",
                       m.role(), "\""));
    }
    if (m.turn_id() != turn_id) {
      return FieldError(
          absl::StrCat(field, ".turn_id"),
          absl::StrCat("must be ", turn_id,
                       " (turns are numbered 1, 2, 3, ... in order), got ",
                       m.turn_id()));
    }
    if (m.parent_turn_id() < 0 || m.parent_turn_id() >= turn_id) {
      return FieldError(
          absl::StrCat(field, ".parent_turn_id"),
          absl::StrCat("must name an earlier turn (or 0 for a first turn); "
                       "turn ",
                       turn_id, " has parent ", m.parent_turn_id()));
    }
    if (m.content().size() > kMaxImportedMessageBytes) {
      return FieldError(absl::StrCat(field, ".content"),
                        absl::StrCat("at most ", kMaxImportedMessageBytes,
                                     " bytes, got ", m.content().size()));
    }
    absl::StatusOr<absl::Time> at =
        ParseTimestamp(absl::StrCat(field, ".timestamp"), m.timestamp());
    if (!at.ok()) return at.status();
    if (is_user) {
      store::ArchivedTurn& turn = archive.turns.emplace_back();
      turn.turn_id = turn_id;
      turn.parent_turn_id = m.parent_turn_id();
      turn.created_at = *at;
      turn.user_message = m.content();
      continue;
    }
    store::ArchivedTurn& turn = archive.turns.back();
    // A turn is stored with one parent and one time: its two messages must
    // agree, or the import could not read back as it was written.
    if (m.parent_turn_id() != turn.parent_turn_id) {
      return FieldError(absl::StrCat(field, ".parent_turn_id"),
                        "must equal its user message's");
    }
    if (*at != turn.created_at) {
      return FieldError(absl::StrCat(field, ".timestamp"),
                        "must equal its user message's");
    }
    if (m.usage().input_tokens() < 0 || m.usage().output_tokens() < 0) {
      return FieldError(absl::StrCat(field, ".usage"),
                        "token counts must not be negative");
    }
    turn.assistant_message = m.content();
    turn.model = m.model();
    turn.stop_reason = m.stop_reason();
    turn.input_tokens = m.usage().input_tokens();
    turn.output_tokens = m.usage().output_tokens();
    if (m.has_cost_usd()) turn.cost_usd = m.cost_usd();
  }
  const int turns = count / 2;
  if (session.active_turn_id() < 0 || session.active_turn_id() > turns ||
      (turns > 0 && session.active_turn_id() == 0)) {
    return FieldError("session.active_turn_id",
                      absl::StrCat("must be a turn of the session (1..", turns,
                                   "; 0 only without turns), got ",
                                   session.active_turn_id()));
  }
  archive.active_turn_id = session.active_turn_id();
  return archive;
}

std::string RenderSessionMarkdown(const store::SessionArchive& archive) {
  std::vector<const store::ArchivedTurn*> branch;
  for (int id = archive.active_turn_id;
       id > 0 && static_cast<size_t>(id) <= archive.turns.size();
       id = archive.turns[static_cast<size_t>(id) - 1].parent_turn_id) {
    branch.push_back(&archive.turns[static_cast<size_t>(id) - 1]);
  }
  std::string out = absl::StrCat(
      "# ", archive.title.empty() ? archive.session_id : archive.title, "\n\n",
      "Session `", archive.session_id, "`, created ",
      FormatTimestamp(archive.created_at), ", ", branch.size(),
      branch.size() == 1 ? " turn" : " turns", ".\n");
  if (!archive.system_prompt.empty()) {
    absl::StrAppend(
        &out, "\n> **System:** ",
        absl::StrReplaceAll(archive.system_prompt, {{"\n", "\n> "}}), "\n");
  }
  for (auto it = branch.rbegin(); it != branch.rend(); ++it) {
    const store::ArchivedTurn& turn = **it;
    absl::StrAppend(&out, "\n## User\n\n", turn.user_message, "\n");
    absl::StrAppend(
        &out, "\n## Assistant",
        turn.model.empty() ? "" : absl::StrCat(" (", turn.model, ")"), "\n\n",
        turn.assistant_message, "\n");
  }
  return out;
}

}  // namespace chat
