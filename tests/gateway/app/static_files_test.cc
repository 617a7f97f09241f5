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

TEST_F(StaticFilesTest, LinksLeavingTheRootAreRefused) {
  // Outside the root: a file beside it, as a key or /etc/passwd would be.
  const std::filesystem::path outside = root_.string() + "-outside";
  std::filesystem::remove_all(outside);
  std::filesystem::create_directories(outside);
  std::ofstream(outside / "secret.js") << "outside";
  Write("web/index.html", "app");
  Write("web/app.js", "app();");
  Write("shared/common.js", "common();");
  Write(".env", "SECRET=1");
  Write("config.yaml", "password: 1");
  std::filesystem::create_symlink(outside / "secret.js", root_ / "web/leak.js");
  std::filesystem::create_symlink(
      "../../" + root_.filename().string() + "-outside/secret.js",
      root_ / "web/relative-leak.js");
  std::filesystem::create_symlink(outside, root_ / "web/outdir");
  std::filesystem::create_symlink(outside, root_ / "vendor");
  std::filesystem::create_symlink("../.env", root_ / "web/env.js");
  std::filesystem::create_symlink("../config.yaml", root_ / "web/config.js");
  std::filesystem::create_symlink("missing.js", root_ / "web/dangling.js");
  // Inside the root, to a file of a served type: followed.
  std::filesystem::create_symlink("../shared/common.js",
                                  root_ / "web/common.js");
  std::filesystem::create_symlink("app.js", root_ / "web/alias.js");

  const StaticFiles files = LoadStaticFiles(root_.string());

  EXPECT_THAT(
      files, UnorderedElementsAre(Key("/web"), Key("/web/"),
                                  Key("/web/index.html"), Key("/web/app.js"),
                                  Key("/web/common.js"), Key("/web/alias.js")));
  EXPECT_EQ(files.at("/web/common.js").body, "common();");
  std::filesystem::remove_all(outside);
}

TEST_F(StaticFilesTest, ARootReachedThroughALinkIsServed) {
  // The root's own path may be a link (a deploy's current -> release-7).
  Write("web/index.html", "app");
  const std::filesystem::path link = root_.string() + "-link";
  std::filesystem::remove_all(link);
  std::filesystem::create_directory_symlink(root_, link);

  const StaticFiles files = LoadStaticFiles(link.string());

  EXPECT_THAT(files, UnorderedElementsAre(Key("/web"), Key("/web/"),
                                          Key("/web/index.html")));
  std::filesystem::remove(link);
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
