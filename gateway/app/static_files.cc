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

void LoadFolder(const std::filesystem::path& root, const std::string& folder,
                StaticFiles* files) {
  std::error_code error;
  const std::filesystem::path base = root / folder;
  if (!std::filesystem::is_directory(base, error)) return;
  auto it = std::filesystem::recursive_directory_iterator(base, error);
  for (; !error && it != std::filesystem::recursive_directory_iterator();
       it.increment(error)) {
    if (Hidden(it->path())) {
      if (it->is_directory(error)) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(error)) continue;
    const absl::string_view type =
        ContentTypeFor(it->path().filename().string());
    if (type.empty()) continue;
    StaticFile file{std::string(type), ""};
    if (!ReadFile(it->path(), &file.body)) continue;
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
  for (const char* folder : kServedFolders) {
    LoadFolder(web_root, folder, &files);
  }
  return files;
}

}  // namespace chat::gateway
