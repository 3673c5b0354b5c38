#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "runtime/DiskCache.h"

using namespace flexjit;

namespace {

std::string temp_dir(const char* tag) {
  std::random_device rd;
  auto dir = std::filesystem::temp_directory_path() /
             (std::string("flexjit_cache_") + tag + "_" + std::to_string(getpid()) + "_" +
              std::to_string(rd()));
  std::filesystem::create_directories(dir);
  return dir.string();
}

std::string payload(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s)
    c = static_cast<char>(rng());
  return s;
}

} // namespace

TEST_CASE("disk cache: round trip, miss and disabled", "[cache]") {
  DiskCache cache(temp_dir("rt"));
  std::string bytes = payload(10000, 1);
  REQUIRE(!cache.load("key-a"));
  cache.store("key-a", bytes);
  auto got = cache.load("key-a");
  REQUIRE(got);
  REQUIRE(*got == bytes);
  REQUIRE(!cache.load("key-b"));

  DiskCache off("");
  off.store("key-a", bytes);
  REQUIRE(!off.enabled());
  REQUIRE(!off.load("key-a"));
}

TEST_CASE("disk cache: corrupt, truncated or foreign entries are misses", "[cache]") {
  DiskCache cache(temp_dir("corrupt"));
  std::string bytes = payload(4096, 2);
  cache.store("k", bytes);
  std::string path = cache.path_for("k");
  std::string original;
  {
    std::ifstream in(path, std::ios::binary);
    original.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto rewrite = [&](const std::string& data) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << data;
  };
  rewrite(original.substr(0, original.size() - 100)); // truncated
  REQUIRE(!cache.load("k"));
  std::string flipped = original;
  flipped[flipped.size() - 7] ^= 0x40; // one payload bit
  rewrite(flipped);
  REQUIRE(!cache.load("k"));
  rewrite("");
  REQUIRE(!cache.load("k"));
  // An entry written for another key at this key's path (a hash collision).
  DiskCache other(temp_dir("other"));
  other.store("not-k", bytes);
  std::filesystem::copy_file(other.path_for("not-k"), path,
                             std::filesystem::copy_options::overwrite_existing);
  REQUIRE(!cache.load("k"));
  rewrite(original);
  REQUIRE(cache.load("k") == bytes);
}

TEST_CASE("disk cache: concurrent writers and readers never see a partial entry", "[cache]") {
  std::string dir = temp_dir("race");
  // Two processes and several threads each store versions of one key while
  // others read it: every successful read is one complete version.
  std::vector<std::string> versions;
  for (unsigned i = 0; i < 4; ++i)
    versions.push_back(payload(200000 + i * 1000, 10 + i));
  auto hammer = [&](unsigned seed, bool& bad) {
    DiskCache cache(dir);
    std::mt19937 rng(seed);
    for (int i = 0; i < 60; ++i) {
      if (rng() % 2) {
        cache.store("shared", versions[rng() % versions.size()]);
        continue;
      }
      if (auto got = cache.load("shared"))
        bad |= std::find(versions.begin(), versions.end(), *got) == versions.end();
    }
  };
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    bool bad = false;
    hammer(99, bad);
    _exit(bad ? 1 : 0);
  }
  bool bad[4] = {false, false, false, false};
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < 4; ++t)
    threads.emplace_back([&, t] { hammer(t, bad[t]); });
  for (auto& t : threads)
    t.join();
  int status = 0;
  waitpid(child, &status, 0);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  for (bool b : bad)
    REQUIRE(!b);
  // No temporary files are left behind.
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    REQUIRE(entry.path().extension() == ".fjc");
}
