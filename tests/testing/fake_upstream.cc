#include "tests/testing/fake_upstream.h"

#include <curl/curl.h>

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace chat::testing {
namespace {

size_t AppendToString(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

std::string Escape(const std::string& s) {
  char* e = curl_easy_escape(nullptr, s.c_str(), static_cast<int>(s.size()));
  std::string out(e);
  curl_free(e);
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<FakeUpstream>> FakeUpstream::Start(
    const std::string& node, const std::string& dir, bool tls,
    const std::vector<std::string>& extra_args) {
  if (node.empty()) {
    return absl::FailedPreconditionError(
        "node was not found at configure time");
  }
  std::vector<std::string> args = {dir + "/server.mjs"};
  if (tls) args.push_back("--tls");
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  auto process = std::make_unique<ServerProcess>(node, args);
  if (absl::Status started = process->Start(); !started.ok()) {
    return absl::InternalError(
        absl::StrCat(started.ToString(), "\n", process->Log()));
  }
  std::string base =
      absl::StrCat(tls ? "https://" : "http://", process->address());
  return std::unique_ptr<FakeUpstream>(new FakeUpstream(
      std::move(process), std::move(base), dir + "/tls/cert.pem"));
}

std::string FakeUpstream::Call(const std::string& path_and_query,
                               bool post) const {
  std::string body;
  const std::string url = base_url_ + path_and_query;
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CAINFO, cert_file_.c_str());
  if (post) curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &AppendToString);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_perform(curl);
  curl_easy_cleanup(curl);
  return body;
}

nlohmann::json FakeUpstream::Stats(const std::string& key) const {
  return nlohmann::json::parse(Call("/_stats?key=" + Escape(key), false));
}

nlohmann::json FakeUpstream::ServerStats() const {
  return nlohmann::json::parse(Call("/_server", false));
}

void FakeUpstream::Release(const std::string& key) const {
  Call("/_release?key=" + Escape(key), true);
}

}  // namespace chat::testing
