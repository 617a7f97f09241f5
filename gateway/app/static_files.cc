#include "gateway/app/static_files.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace chat::gateway {
namespace {

constexpr const char* kServedFolders[] = {"web", "docs", "js", "vendor"};

bool ReadFile(const std::filesystem::path& path, std::string* contents) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream buffer;
  buffer << in.rdbuf();
  *contents = buffer.str();
  return true;
}

bool Hidden(const std::filesystem::path& name) {
  const std::string text = name.filename().string();
  return text.empty() || text[0] == '.' || text == "node_modules";
}

// Whether `real`, a listed file with every symbolic link on its path
// followed (canonical), lies inside `real_root` (canonical too) and is one
// the gateway would serve under its own name: a web type, in no dot folder.
// Without it a link (or a served folder that is a link) to /etc/passwd, to a
// key beside the root, or to the root's .env under a .js name would be
// served to anyone who asks.
bool StaysInRoot(const std::filesystem::path& real,
                 const std::filesystem::path& real_root) {
  const std::filesystem::path relative = real.lexically_relative(real_root);
  if (relative.empty() || *relative.begin() == "..") return false;
  for (const std::filesystem::path& part : relative) {
    if (part.string().empty() || part.string()[0] == '.') return false;
  }
  return !ContentTypeFor(real.filename().string()).empty();
}

void LoadFolder(const std::filesystem::path& root,
                const std::filesystem::path& real_root,
                const std::string& folder, StaticFiles* files) {
  std::error_code error;
  const std::filesystem::path base = root / folder;
  if (!std::filesystem::is_directory(base, error)) return;
  auto it = std::filesystem::recursive_directory_iterator(base, error);
  for (; !error && it != std::filesystem::recursive_directory_iterator();
       it.increment(error)) {
    // Its own error code: an entry that cannot be inspected (a dangling
    // link) is skipped, and must not end the walk, which `error` would.
    std::error_code entry_error;
    if (Hidden(it->path())) {
      if (it->is_directory(entry_error)) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(entry_error)) continue;
    const absl::string_view type =
        ContentTypeFor(it->path().filename().string());
    if (type.empty()) continue;
    const std::filesystem::path real =
        std::filesystem::canonical(it->path(), entry_error);
    if (entry_error || !StaysInRoot(real, real_root)) continue;
    StaticFile file{std::string(type), ""};
    if (!ReadFile(real, &file.body)) continue;
    const std::string relative =
        it->path().lexically_relative(root).generic_string();
    const std::string url = absl::StrCat("/", relative);
    if (it->path().filename() == "index.html" &&
        it->path().parent_path() == base) {
      (*files)[absl::StrCat("/", folder)] = file;
      (*files)[absl::StrCat("/", folder, "/")] = file;
    }
    (*files)[url] = std::move(file);
  }
}

}  // namespace

absl::string_view ContentTypeFor(absl::string_view file_name) {
  static constexpr std::pair<absl::string_view, absl::string_view> kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".woff2", "font/woff2"},
      {".webmanifest", "application/manifest+json"},
  };
  for (const auto& [extension, type] : kTypes) {
    if (absl::EndsWith(file_name, extension)) return type;
  }
  return "";
}

StaticFiles LoadStaticFiles(const std::string& web_root) {
  StaticFiles files;
  if (web_root.empty()) return files;
  std::error_code error;
  const std::filesystem::path real_root =
      std::filesystem::canonical(web_root, error);
  if (error) return files;  // Missing: nothing to serve.
  for (const char* folder : kServedFolders) {
    LoadFolder(web_root, real_root, folder, &files);
  }
  return files;
}

}  // namespace chat::gateway
