#include "gateway/openapi/proto_docs.h"

#include <map>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/descriptor.pb.h"

namespace chat::gateway {

extern const unsigned char kChatDescriptorSet[];
extern const size_t kChatDescriptorSetSize;

namespace {

using Path = std::vector<int>;

// Field numbers in descriptor.proto that make up source location paths.
constexpr int kFileMessage = 4;    // FileDescriptorProto.message_type
constexpr int kFileService = 6;    // FileDescriptorProto.service
constexpr int kMessageField = 2;   // DescriptorProto.field
constexpr int kMessageNested = 3;  // DescriptorProto.nested_type
constexpr int kServiceMethod = 2;  // ServiceDescriptorProto.method

// "// A.\n// B.\n//\n// C." arrives as " A.\n B.\n\n C.\n": lines of one
// block are joined with spaces, blocks with a blank line.
std::string Clean(absl::string_view comment) {
  std::string out;
  bool blank_pending = false;
  for (absl::string_view line : absl::StrSplit(comment, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) {
      blank_pending = !out.empty();
      continue;
    }
    if (!out.empty()) out += blank_pending ? "\n\n" : " ";
    blank_pending = false;
    absl::StrAppend(&out, line);
  }
  return out;
}

void AddMessage(const google::protobuf::DescriptorProto& message,
                const std::string& scope, const Path& path,
                const std::map<Path, std::string>& by_path,
                absl::flat_hash_map<std::string, std::string>* out) {
  const std::string name = absl::StrCat(scope, ".", message.name());
  auto comment = by_path.find(path);
  if (comment != by_path.end()) (*out)[name] = comment->second;
  for (int i = 0; i < message.field_size(); ++i) {
    Path field_path = path;
    field_path.insert(field_path.end(), {kMessageField, i});
    auto c = by_path.find(field_path);
    if (c != by_path.end())
      (*out)[absl::StrCat(name, ".", message.field(i).name())] = c->second;
  }
  for (int i = 0; i < message.nested_type_size(); ++i) {
    Path nested = path;
    nested.insert(nested.end(), {kMessageNested, i});
    AddMessage(message.nested_type(i), name, nested, by_path, out);
  }
}

}  // namespace

ProtoDocs ProtoDocs::FromDescriptorSet(absl::string_view serialized) {
  ProtoDocs docs;
  google::protobuf::FileDescriptorSet set;
  if (!set.ParseFromArray(serialized.data(),
                          static_cast<int>(serialized.size()))) {
    return docs;
  }
  for (const google::protobuf::FileDescriptorProto& file : set.file()) {
    std::map<Path, std::string> by_path;
    for (const auto& location : file.source_code_info().location()) {
      if (!location.has_leading_comments()) continue;
      by_path[Path(location.path().begin(), location.path().end())] =
          Clean(location.leading_comments());
    }
    for (int i = 0; i < file.message_type_size(); ++i) {
      AddMessage(file.message_type(i), file.package(), {kFileMessage, i},
                 by_path, &docs.comments_);
    }
    for (int s = 0; s < file.service_size(); ++s) {
      const auto& service = file.service(s);
      const std::string name =
          absl::StrCat(file.package(), ".", service.name());
      auto c = by_path.find({kFileService, s});
      if (c != by_path.end()) docs.comments_[name] = c->second;
      for (int m = 0; m < service.method_size(); ++m) {
        auto mc = by_path.find({kFileService, s, kServiceMethod, m});
        if (mc != by_path.end()) {
          docs.comments_[absl::StrCat(name, ".", service.method(m).name())] =
              mc->second;
        }
      }
    }
  }
  return docs;
}

std::string ProtoDocs::Comment(absl::string_view full_name) const {
  auto it = comments_.find(full_name);
  return it == comments_.end() ? "" : it->second;
}

const ProtoDocs& ChatProtoDocs() {
  static const ProtoDocs* const docs =
      new ProtoDocs(ProtoDocs::FromDescriptorSet(
          absl::string_view(reinterpret_cast<const char*>(kChatDescriptorSet),
                            kChatDescriptorSetSize)));
  return *docs;
}

}  // namespace chat::gateway
