// The error log: levels as nginx's (a line below the level is not
// written), nginx's line in a file, one descriptor per path, reopening
// after logrotate moved the file, the main log taking over stderr, and the
// start-up report written whatever the level until start-up is over.
#include "mgmt/error_log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

namespace terminus::errlog {
namespace {

class ErrorLog : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() / ("tel-" + std::to_string(::getpid()) + "-" +
                                                          ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::create_directories(dir_);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::string path(const std::string& f) const { return (dir_ / f).string(); }
    std::string read(const std::string& f) const {
        std::ifstream in(path(f));
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }
    std::filesystem::path dir_;
};

TEST_F(ErrorLog, LinesBelowTheLevelAreNotWritten) {
    const Target* t = target({path("e.log"), Level::kWarn});
    ASSERT_NE(t, nullptr);
    EXPECT_FALSE(t->enabled(Level::kInfo));
    EXPECT_TRUE(t->enabled(Level::kWarn));
    EXPECT_TRUE(t->enabled(Level::kEmerg));
    write(*t, Level::kDebug, "d");
    write(*t, Level::kInfo, "i");
    write(*t, Level::kNotice, "n");
    write(*t, Level::kWarn, "w %d", 1);
    write(*t, Level::kError, "e");
    write(*t, Level::kCrit, "c");
    const std::string got = read("e.log");
    const std::regex line(R"(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(\w+)\] (\d+)#0: (.*))");
    std::istringstream in(got);
    std::string l, levels, texts;
    while (std::getline(in, l)) {
        std::smatch m;
        ASSERT_TRUE(std::regex_match(l, m, line)) << l;
        EXPECT_EQ(m[2], std::to_string(::getpid()));
        levels += m[1].str() + " ";
        texts += m[3].str() + " ";
    }
    EXPECT_EQ(levels, "warn error crit ");
    EXPECT_EQ(texts, "w 1 e c ");
}

TEST_F(ErrorLog, OnePathOneFileWhateverTheLevels) {
    const Target* a = target({path("s.log"), Level::kInfo});
    const Target* b = target({path("s.log"), Level::kError});
    const Target* c = target({path("s.log"), Level::kInfo});
    ASSERT_TRUE(a && b && c);
    EXPECT_NE(a, b);
    EXPECT_EQ(a, c);
    EXPECT_EQ(a->file, b->file);
    write(*a, Level::kInfo, "from a");
    write(*b, Level::kInfo, "not from b");
    write(*b, Level::kError, "from b");
    const std::string got = read("s.log");
    EXPECT_NE(got.find("[info]"), std::string::npos);
    EXPECT_EQ(got.find("not from b"), std::string::npos);
    EXPECT_NE(got.find("from b"), std::string::npos);
    std::string why;
    EXPECT_EQ(target({path("no/such/dir/x.log"), Level::kInfo}, &why), nullptr);
    EXPECT_NE(why.find("No such file"), std::string::npos) << why;
}

TEST_F(ErrorLog, ReopenFollowsLogrotate) {
    const Target* t = target({path("r.log"), Level::kInfo});
    ASSERT_NE(t, nullptr);
    write(*t, Level::kError, "before");
    std::filesystem::rename(path("r.log"), path("r.log.1"));
    write(*t, Level::kError, "still old");
    // (Files of the tests before, whose directories are gone, fail and
    // keep their old descriptors.)
    reopen();
    write(*t, Level::kError, "after");
    EXPECT_NE(read("r.log.1").find("still old"), std::string::npos);
    EXPECT_EQ(read("r.log.1").find("after"), std::string::npos);
    EXPECT_NE(read("r.log").find("after"), std::string::npos);
    struct stat st{};
    ASSERT_EQ(::stat(path("r.log").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0077 & ~0040, 0u) << "0640: nothing for others";
}

TEST_F(ErrorLog, TheMainLogTakesOverStderrAndGivesItBack) {
    set_program("unit");
    ASSERT_EQ(configure({path("main.log"), Level::kWarn}), "");
    std::fprintf(stderr, "a line from elsewhere\n");
    std::fflush(stderr);
    write(Level::kInfo, "below");
    write(Level::kError, "above");
    report_at(Level::kNotice, "unit", "start-up report, before started()");
    started();
    report_at(Level::kNotice, "unit", "a notice after started()");
    report_at(Level::kError, "unit", "an error after started()");
    ASSERT_EQ(configure({"stderr", Level::kInfo}), "");
    std::fprintf(stderr, "back on the real stderr\n");
    const std::string got = read("main.log");
    EXPECT_NE(got.find("a line from elsewhere"), std::string::npos) << got;
    EXPECT_EQ(got.find("below"), std::string::npos) << got;
    EXPECT_NE(got.find("[error]"), std::string::npos) << got;
    EXPECT_NE(got.find("start-up report"), std::string::npos) << got;
    EXPECT_EQ(got.find("a notice after"), std::string::npos) << got;
    EXPECT_NE(got.find("an error after"), std::string::npos) << got;
    EXPECT_EQ(got.find("back on the real stderr"), std::string::npos) << got;
}

}  // namespace
}  // namespace terminus::errlog
