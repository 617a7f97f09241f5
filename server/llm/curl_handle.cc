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
  curl_slist* list = nullptr;
  for (const std::string& h : headers) {
    curl_slist* next = curl_slist_append(list, h.c_str());
    if (next == nullptr) {
      curl_slist_free_all(list);
      return absl::InternalError("curl_slist_append failed");
    }
    list = next;
  }
  absl::Status s = SetOption(CURLOPT_HTTPHEADER, list);
  if (!s.ok()) {
    curl_slist_free_all(list);
    return s;
  }
  curl_slist_free_all(headers_);
  headers_ = list;
  return absl::OkStatus();
}

}  // namespace chat::llm
