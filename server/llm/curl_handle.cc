#include "server/llm/curl_handle.h"

namespace chat::llm {

absl::StatusOr<std::unique_ptr<CurlHandle>> CurlHandle::Create() {
  CURL* handle = curl_easy_init();
  if (handle == nullptr) return absl::InternalError("curl_easy_init failed");
  return std::unique_ptr<CurlHandle>(new CurlHandle(handle));
}

CurlHandle::~CurlHandle() {
  curl_easy_cleanup(handle_);
  curl_slist_free_all(headers_);
}

absl::Status CurlHandle::SetHeaders(const std::vector<std::string>& headers) {
  // Keep the longest prefix of the current list that is unchanged.
  size_t kept = 0;
  curl_slist* last_kept = nullptr;
  for (curl_slist* node = headers_;
       node != nullptr && kept < headers.size() && headers[kept] == node->data;
       node = node->next) {
    last_kept = node;
    ++kept;
  }
  curl_slist* rest = last_kept == nullptr ? headers_ : last_kept->next;
  if (last_kept == nullptr) {
    headers_ = nullptr;
  } else {
    last_kept->next = nullptr;
  }
  curl_slist_free_all(rest);
  for (size_t i = kept; i < headers.size(); ++i) {
    curl_slist* list = curl_slist_append(headers_, headers[i].c_str());
    if (list == nullptr) {
      curl_easy_setopt(handle_, CURLOPT_HTTPHEADER, nullptr);
      curl_slist_free_all(headers_);
      headers_ = nullptr;
      return absl::InternalError("curl_slist_append failed");
    }
    headers_ = list;
  }
  return SetOption(CURLOPT_HTTPHEADER, headers_);
}

}  // namespace chat::llm
