#ifndef CHAT_GATEWAY_APP_STATIC_FILES_H_
#define CHAT_GATEWAY_APP_STATIC_FILES_H_

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace chat::gateway {

struct StaticFile {
  std::string content_type;
  std::string body;
};

// URL path -> file.
using StaticFiles = absl::flat_hash_map<std::string, StaticFile>;

// The files the gateway serves from --web_root, read once at start-up so
// that no I/O thread ever waits for the disk. Four folders are served, each
// under its own name: web/ (the chat app), docs/ (the API docs page), js/
// (the JS client) and vendor/ (the browser libraries scripts/web-assets.sh
// copies from npm). A folder's index.html also answers its bare path
// ("/web" and "/web/"). Only files with a known web type are served;
// node_modules folders, dotfiles and anything else in the root are not.
// A symbolic link is followed only to a file inside the root (the root's
// own path resolved too) that is itself of a served type and in no dot
// folder; links leaving the root, dangling ones and links to directories
// are skipped.
// An empty or missing root gives no files.
StaticFiles LoadStaticFiles(const std::string& web_root);

// The Content-Type for a file name by its extension; empty when the
// extension is not one the gateway serves.
absl::string_view ContentTypeFor(absl::string_view file_name);

}  // namespace chat::gateway

#endif  // CHAT_GATEWAY_APP_STATIC_FILES_H_
