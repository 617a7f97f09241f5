#include "server/store/conversation_store.h"

#include <memory>

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
      "unknown conversation store \"", url,
      "\": expected \"memory\", \"sqlite:PATH\", \"sqlite::memory:\", "
      "\"postgres://USER@HOST:PORT/DB\" or \"postgres:KEY=VALUE ...\""));
}

}  // namespace chat::store
