#ifndef CHAT_SERVER_LLM_CURL_HANDLE_H_
#define CHAT_SERVER_LLM_CURL_HANDLE_H_

#include <curl/curl.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace chat::llm {

// Owns one libcurl easy handle and the header list it points at, and turns
// every curl_easy_setopt into a Status (as google-cloud-cpp's CurlHandle
// does), so a missing feature in the installed libcurl is an error value
// rather than a silently ignored option. Not thread-safe.
class CurlHandle {
 public:
  // kInternal if libcurl cannot allocate a handle.
  static absl::StatusOr<std::unique_ptr<CurlHandle>> Create();
  CurlHandle(const CurlHandle&) = delete;
  CurlHandle& operator=(const CurlHandle&) = delete;
  ~CurlHandle();

  CURL* get() const { return handle_; }

  // Back to libcurl's defaults (curl_easy_reset); the header list stays for
  // SetHeaders to reuse.
  void Reset() { curl_easy_reset(handle_); }

  template <typename T>
  absl::Status SetOption(CURLoption option, T value) {
    CURLcode code = curl_easy_setopt(handle_, option, value);
    if (code == CURLE_OK) return absl::OkStatus();
    return absl::InternalError(absl::StrCat(
        "curl_easy_setopt(", option, ") failed: ", curl_easy_strerror(code)));
  }

  // Sets the request headers ("Name: value" lines); the list lives as long
  // as the handle. A handle reused for another request keeps the nodes of
  // the leading lines that did not change (credentials, content type), so
  // put the lines that change per request last.
  absl::Status SetHeaders(const std::vector<std::string>& headers);

 private:
  explicit CurlHandle(CURL* handle) : handle_(handle) {}

  CURL* const handle_;
  curl_slist* headers_ = nullptr;
};

}  // namespace chat::llm

#endif  // CHAT_SERVER_LLM_CURL_HANDLE_H_
