#include "server/store/conversation_store.h"

#include <algorithm>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "server/store/memory_store.h"
#include "server/store/postgres_store.h"
#include "server/store/sqlite_store.h"

namespace chat::store {

IdempotentAnswer AnswerOfTurn(const SessionKey& key, const Turn& turn,
                              int turn_count) {
  IdempotentAnswer answer;
  answer.session_id = key.session_id;
  answer.response = turn.assistant_message;
  answer.timestamp = turn.created_at;
  answer.turn_count = turn_count;
  answer.model = turn.model;
  answer.stop_reason = turn.stop_reason;
  answer.input_tokens = turn.input_tokens;
  answer.output_tokens = turn.output_tokens;
  answer.cost_usd = turn.cost_usd;
  return answer;
}

absl::Status RequestClaimLostError(const RequestClaim& claim) {
  return absl::FailedPreconditionError(
      absl::StrCat("request id ", claim.key.request_id,
                   " is no longer held by this turn's claim (taken over or "
                   "expired); the turn was not stored"));
}

absl::StatusOr<std::unique_ptr<ConversationStore>> OpenConversationStore(
    absl::string_view url, const StoreOptions& options) {
  if (url == "memory") return std::make_unique<MemoryConversationStore>();
  // Everything after the first colon is the path, so "sqlite::memory:" names
  // SQLite's ":memory:" and paths may contain colons.
  absl::string_view path = url;
  if (absl::ConsumePrefix(&path, "sqlite:")) {
    if (path.empty()) {
      return absl::InvalidArgumentError(
          "conversation store \"sqlite:\" needs a path: \"sqlite:PATH\" or "
          "\"sqlite::memory:\"");
    }
    return OpenSqliteConversationStore(path);
  }
  // libpq understands both URL schemes itself.
  if (absl::StartsWith(url, "postgres://") ||
      absl::StartsWith(url, "postgresql://")) {
    return OpenPostgresConversationStore(url, options.max_connections);
  }
  absl::string_view conninfo = url;
  if (absl::ConsumePrefix(&conninfo, "postgres:") ||
      absl::ConsumePrefix(&conninfo, "postgresql:")) {
    return OpenPostgresConversationStore(conninfo, options.max_connections);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown conversation store \"", RedactStoreUrl(url),
      "\": expected \"memory\", \"sqlite:PATH\", \"sqlite::memory:\", "
      "\"postgres://USER@HOST:PORT/DB\" or \"postgres:KEY=VALUE ...\""));
}

namespace {

// Replaces the value of every `password=` in `text` (keyword/value pairs
// separated by `separators`, a value possibly single-quoted as libpq allows)
// with "***".
std::string RedactPasswordParameters(absl::string_view text,
                                     absl::string_view separators) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    const bool at_start =
        i == 0 || separators.find(text[i - 1]) != absl::string_view::npos;
    if (at_start && absl::StartsWithIgnoreCase(text.substr(i), "password")) {
      size_t j = i + 8;
      while (j < text.size() && text[j] == ' ') ++j;
      if (j < text.size() && text[j] == '=') {
        ++j;
        while (j < text.size() && text[j] == ' ') ++j;
        absl::StrAppend(&out, text.substr(i, j - i), "***");
        if (j < text.size() && text[j] == '\'') {
          // A quoted value ends at the next unescaped quote.
          ++j;
          while (j < text.size() && text[j] != '\'')
            j += text[j] == '\\' ? 2 : 1;
          ++j;
        } else {
          while (j < text.size() &&
                 separators.find(text[j]) == absl::string_view::npos) {
            ++j;
          }
        }
        i = std::min(j, text.size());
        continue;
      }
    }
    out.push_back(text[i++]);
  }
  return out;
}

}  // namespace

std::string RedactStoreUrl(absl::string_view url) {
  // Any URL (a mistyped scheme may still carry a password).
  if (const size_t scheme_end = url.find("://");
      scheme_end != absl::string_view::npos) {
    absl::string_view rest = url.substr(scheme_end + 3);
    std::string out(url.substr(0, scheme_end + 3));
    // The authority ends at the first '/', '?' or '#'; a password sits
    // between the userinfo's ':' and the last '@' before that.
    const size_t authority_end = rest.find_first_of("/?#");
    absl::string_view authority = rest.substr(0, authority_end);
    const size_t at = authority.rfind('@');
    if (at != absl::string_view::npos) {
      absl::string_view userinfo = authority.substr(0, at);
      const size_t colon = userinfo.find(':');
      if (colon != absl::string_view::npos) {
        absl::StrAppend(&out, userinfo.substr(0, colon), ":***");
      } else {
        absl::StrAppend(&out, userinfo);
      }
      absl::StrAppend(&out, authority.substr(at));
    } else {
      absl::StrAppend(&out, authority);
    }
    if (authority_end != absl::string_view::npos) {
      absl::StrAppend(
          &out, RedactPasswordParameters(rest.substr(authority_end), "?&"));
    }
    return out;
  }
  for (absl::string_view scheme : {"postgres:", "postgresql:"}) {
    if (!absl::StartsWith(url, scheme)) continue;
    return absl::StrCat(
        scheme, RedactPasswordParameters(url.substr(scheme.size()), " \t\n"));
  }
  return std::string(url);
}

}  // namespace chat::store

namespace chat::store {

// Stores written before branches answer as a store without them.
absl::StatusOr<std::vector<StoredMessage>> ConversationStore::LoadBranch(
    const SessionKey& /*key*/, int /*turn_id*/) {
  return absl::UnimplementedError("this store keeps no branches");
}

absl::StatusOr<StoredTurn> ConversationStore::AppendBranchTurn(
    const SessionKey& /*key*/, int /*parent_turn_id*/, const Turn& /*turn*/) {
  return absl::UnimplementedError("this store keeps no branches");
}

absl::StatusOr<int> ConversationStore::SwitchBranch(const SessionKey& /*key*/,
                                                    int /*turn_id*/) {
  return absl::UnimplementedError("this store keeps no branches");
}

}  // namespace chat::store
