#include "gateway/app/static_files.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace chat::gateway {
namespace {

using ::testing::IsEmpty;
using ::testing::Key;
using ::testing::UnorderedElementsAre;

class StaticFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::path(::testing::TempDir()) /
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(root_);
  }

  void Write(const std::string& relative, const std::string& contents) {
    const std::filesystem::path path = root_ / relative;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << contents;
  }

  std::filesystem::path root_;
};

TEST_F(StaticFilesTest, ServesTheFourFoldersByTheirNames) {
  Write("web/index.html", "<p>app</p>");
  Write("web/assets/app.js", "app();");
  Write("docs/index.html", "<p>docs</p>");
  Write("js/chat-client.js", "client();");
  Write("vendor/purify.min.js", "purify();");
  Write("vendor/swagger-ui.css", "body{}");

  const StaticFiles files = LoadStaticFiles(root_.string());

  EXPECT_THAT(files,
              UnorderedElementsAre(
                  Key("/web"), Key("/web/"), Key("/web/index.html"),
                  Key("/web/assets/app.js"), Key("/docs"), Key("/docs/"),
                  Key("/docs/index.html"), Key("/js/chat-client.js"),
                  Key("/vendor/purify.min.js"), Key("/vendor/swagger-ui.css")));
  EXPECT_EQ(files.at("/web/").body, "<p>app</p>");
  EXPECT_EQ(files.at("/docs").body, "<p>docs</p>");
  EXPECT_EQ(files.at("/web/assets/app.js").content_type,
            "text/javascript; charset=utf-8");
  EXPECT_EQ(files.at("/vendor/swagger-ui.css").content_type,
            "text/css; charset=utf-8");
}

TEST_F(StaticFilesTest, LeavesOutPackagesDotfilesUnknownTypesAndOtherFolders) {
  Write("web/index.html", "app");
  Write("web/node_modules/marked/lib/marked.umd.js", "not served");
  Write("web/package.json", "{}");
  Write("web/.env", "SECRET=1");
  Write("web/.hidden/page.html", "not served");
  Write("python/example.py", "print()");
  Write("secret.html", "not served");
  Write("web/sub/index.html", "nested");

  const StaticFiles files = LoadStaticFiles(root_.string());

  EXPECT_THAT(files, UnorderedElementsAre(Key("/web"), Key("/web/"),
                                          Key("/web/index.html"),
                                          Key("/web/sub/index.html")));
}

TEST_F(StaticFilesTest, NoRootOrAMissingRootServesNothing) {
  EXPECT_THAT(LoadStaticFiles(""), IsEmpty());
  EXPECT_THAT(LoadStaticFiles((root_ / "missing").string()), IsEmpty());
}

TEST(ContentTypeForTest, KnowsTheWebTypesAndNothingElse) {
  EXPECT_EQ(ContentTypeFor("index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(ContentTypeFor("app.mjs"), "text/javascript; charset=utf-8");
  EXPECT_EQ(ContentTypeFor("logo.svg"), "image/svg+xml");
  EXPECT_EQ(ContentTypeFor("package.json"), "");
  EXPECT_EQ(ContentTypeFor("README"), "");
}

}  // namespace
}  // namespace chat::gateway
