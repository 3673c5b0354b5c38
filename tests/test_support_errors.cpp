// The errors every module shares (support/Error.h): a broken internal invariant is an
// Error too, and README.md's "Errors" section stays complete: every fail(...) in the
// sources of the build's modules appears in its module's subsection, and every test
// the section names exists, in the file it names.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <flexjit/flexjit.h>

#include "flexjit/codegen/HostJit.h"
#include "flexjit/testing/SeedMods.h"

using namespace flexjit;
using Catch::Contains;

namespace {

// The library's modules in pipeline order (cmake/Modules.cmake's FLEXJIT_MODULES) and
// testing/, as tests/CMakeLists.txt passes them: a CMake list, ';'-separated.
std::vector<std::string> build_modules() {
  std::vector<std::string> modules;
  std::istringstream list(FLEXJIT_MODULES_LIST);
  for (std::string module; std::getline(list, module, ';');)
    if (!module.empty())
      modules.push_back(module);
  return modules;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Whether `source` has a TEST_CASE("<name>", ...).
bool defines_test(const std::string& source, const std::string& name) {
  const std::string quoted = "\"" + name + "\"";
  for (size_t at = source.find(quoted); at != std::string::npos; at = source.find(quoted, at + 1)) {
    size_t before = at;
    while (before > 0 && std::isspace(static_cast<unsigned char>(source[before - 1])))
      --before;
    const std::string opening = "TEST_CASE(";
    if (before >= opening.size() &&
        source.compare(before - opening.size(), opening.size(), opening) == 0)
      return true;
  }
  return false;
}

} // namespace

TEST_CASE("errors: a broken internal invariant is an Error too", "[errors][support]") {
  const HostJitMod score = HostJitMod::compile(seeds::soft_cap(20.0f));
  const FlexjitModArgs args{};
  REQUIRE_THROWS_WITH(score.mask(0, 0, 0, 0, args),
                      Contains("flexjit internal error at ") &&
                          Contains("HostJitMod::mask on a mod that is not a mask_mod"));
}

// README.md's "Errors" section against the sources: it has one subsection per module
// with fail(...) calls, "### <title> (`<module>/`)", in pipeline order; every message
// format of a module's fail(...) calls (the first string literal) is in that module's
// subsection; and every test case a row names exists in the test file the row names
// before it. Needs the source tree (skips without it).
TEST_CASE("errors: README's error table lists every fail() and real tests", "[errors][support]") {
  namespace fs = std::filesystem;
  const fs::path root = FLEXJIT_SOURCE_DIR;
  if (!fs::exists(root / "README.md")) {
    SUCCEED("skipped: no source tree at " << root);
    return;
  }
  const std::string readme = read_file(root / "README.md");
  const size_t table = readme.find("## Errors");
  REQUIRE(table != std::string::npos);
  const std::string errors = readme.substr(table, readme.find("\n## ", table + 1) - table);

  const std::vector<std::string> modules = build_modules();
  INFO("FLEXJIT_MODULES_LIST = " << FLEXJIT_MODULES_LIST);
  REQUIRE(modules.size() >= 8);
  CHECK(modules.front() == "support");
  CHECK(modules.back() == "testing");

  // The subsections by module: where each starts in `errors`, and its text.
  struct Subsection {
    size_t at = 0;
    std::string text;
  };
  std::map<std::string, Subsection> subsections;
  const std::regex heading(R"(\(`(\w+)/`\)$)");
  for (size_t at = errors.find("\n### "); at != std::string::npos;) {
    const size_t next = errors.find("\n### ", at + 1);
    const std::string text = errors.substr(at + 1, next - at - 1);
    const std::string title = text.substr(0, text.find('\n'));
    std::smatch m;
    INFO("README subsection \"" << title << "\"");
    REQUIRE(std::regex_search(title, m, heading));
    CHECK(std::find(modules.begin(), modules.end(), m[1].str()) != modules.end());
    CHECK(subsections.count(m[1].str()) == 0);
    subsections[m[1].str()] = {at, text};
    at = next;
  }

  const std::regex fail_call(R"re(\bfail\(\s*"((?:[^"\\]|\\.)*)")re");
  // A file with a fail() of its own: flexjit::fail's definition, and the fuzz-case
  // parser's, which throws std::runtime_error, not an Error.
  const std::regex own_fail(R"(\bvoid\s+fail\()");
  std::set<std::string> own_fail_files;
  int messages = 0;
  size_t previous_at = 0;
  for (const std::string& module : modules) {
    const auto section = subsections.find(module);
    int in_module = 0;
    std::vector<fs::path> files;
    for (const auto& entry : fs::recursive_directory_iterator(root / module))
      if (entry.path().extension() == ".cpp" || entry.path().extension() == ".h")
        files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (const fs::path& file : files) {
      const std::string name = fs::relative(file, root).generic_string();
      const std::string source = read_file(file);
      if (std::regex_search(source, own_fail)) {
        own_fail_files.insert(name);
        continue;
      }
      for (auto it = std::sregex_iterator(source.begin(), source.end(), fail_call);
           it != std::sregex_iterator(); ++it) {
        // A table cell shows "|" as "\|".
        const std::string format = std::regex_replace((*it)[1].str(), std::regex(R"(\|)"), R"(\|)");
        INFO(name << ": fail(\"" << format << "\") in README's subsection for " << module << "/");
        REQUIRE(section != subsections.end());
        const bool listed = section->second.text.find(format) != std::string::npos;
        CHECK(listed);
        ++messages;
        ++in_module;
      }
    }
    if (in_module > 0) { // pipeline order
      INFO("README's subsection for " << module << "/ follows the previous module's");
      CHECK(section->second.at > previous_at);
      previous_at = section->second.at;
    }
  }
  CHECK(messages >= 80);
  {
    INFO("a new file defines a fail() of its own: is it flexjit::fail?");
    CHECK(own_fail_files == std::set<std::string>{"support/Error.h", "testing/FuzzCase.cpp"});
  }

  std::set<std::string> names;
  for (const Catch::TestCase& test : Catch::getRegistryHub().getTestCaseRegistry().getAllTests())
    names.insert(test.getTestCaseInfo().name);
  // The Test cell: `test_<module>[_<topic>].cpp`: "<test case>"; "<test case>"; ...
  const std::regex cited_token(R"re(`(?:tests/)?(test_\w+\.cpp)`|"([^"]+)")re");
  int cited = 0;
  std::istringstream lines(errors);
  for (std::string line; std::getline(lines, line);) {
    const size_t last_cell = line.rfind(" | ");
    if (line.rfind("| ", 0) != 0 || last_cell == std::string::npos)
      continue;
    const std::string tests = line.substr(last_cell);
    std::string file;
    for (auto it = std::sregex_iterator(tests.begin(), tests.end(), cited_token);
         it != std::sregex_iterator(); ++it) {
      if ((*it)[1].matched) {
        file = (*it)[1];
        INFO("README names test file " << file);
        CHECK(fs::exists(root / "tests" / file));
        continue;
      }
      const std::string name = (*it)[2];
      INFO("README names test \"" << name << "\" in " << (file.empty() ? "no file" : file));
      CHECK(names.count(name) == 1);
      REQUIRE(!file.empty());
      CHECK(defines_test(read_file(root / "tests" / file), name));
      ++cited;
    }
  }
  CHECK(cited >= 80);
}
