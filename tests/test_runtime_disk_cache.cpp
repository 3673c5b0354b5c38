#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <thread>

#include "flexjit/runtime/DiskCache.h"

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

TEST_CASE("disk cache: round trip, miss and disabled", "[runtime][cache]") {
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

TEST_CASE("disk cache: corrupt, truncated or foreign entries are misses", "[runtime][cache]") {
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

namespace {

// Three versions of each key's entry: different sizes and bytes, made once (the
// workers only store, load and compare).
struct Versions {
  std::vector<std::vector<std::string>> of; // [key][version]
  Versions(unsigned keys, size_t bytes) {
    for (unsigned k = 0; k < keys; ++k) {
      of.emplace_back();
      for (unsigned v = 0; v < 3; ++v)
        of.back().push_back(payload((1 + v) * bytes + k, 1000 * k + v));
    }
  }
  // Whether `got` is, byte for byte, one complete version of `key`.
  bool complete(const std::optional<std::string>& got, unsigned key) const {
    return got && std::find(of[key].begin(), of[key].end(), *got) != of[key].end();
  }
};

struct Tally {
  int stores = 0, loads = 0, misses = 0, bad = 0;
};

// Random stores and loads of keys "k0", "k1", ... (every key stored before):
// every load must hit, with one complete version of its key.
Tally hammer(const std::string& dir, unsigned seed, int ops, const Versions& versions) {
  DiskCache cache(dir);
  std::mt19937 rng(seed);
  Tally t;
  for (int i = 0; i < ops; ++i) {
    const unsigned key = rng() % versions.of.size();
    const std::string name = "k" + std::to_string(key);
    if (rng() % 2) {
      cache.store(name, versions.of[key][rng() % 3]);
      ++t.stores;
      continue;
    }
    ++t.loads;
    const std::optional<std::string> got = cache.load(name);
    t.misses += !got;
    t.bad += got && !versions.complete(got, key);
  }
  return t;
}

} // namespace

TEST_CASE("disk cache: processes racing on the same keys never see a partial entry",
          "[runtime][cache]") {
  // Four processes (two threads in this one) store and load three keys with
  // 0.25-0.75 MB entries. Every key exists from the start and a store replaces
  // an entry by renaming a complete file over it, so a load that misses or
  // returns anything but one whole version means a reader saw a half-written
  // entry (an in-place write fails this test).
  const std::string dir = temp_dir("race");
  const Versions versions(3, 256 * 1024);
  constexpr int kOps = 40;
  {
    DiskCache cache(dir);
    for (unsigned k = 0; k < versions.of.size(); ++k)
      cache.store("k" + std::to_string(k), versions.of[k][0]);
  }
  int go[2];
  REQUIRE(pipe(go) == 0);
  std::vector<pid_t> children;
  for (unsigned p = 0; p < 3; ++p) {
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      ::close(go[1]);
      char c;
      while (::read(go[0], &c, 1) < 0 && errno == EINTR) {
      } // released when the parent closes its end
      const Tally t = hammer(dir, 100 + p, kOps, versions);
      _exit(t.misses ? 1 : t.bad ? 2 : t.loads == 0 ? 3 : 0);
    }
    children.push_back(child);
  }
  ::close(go[0]);
  ::close(go[1]); // go
  std::vector<Tally> tallies(2);
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < tallies.size(); ++t)
    threads.emplace_back([&, t] { tallies[t] = hammer(dir, t, kOps, versions); });
  for (auto& t : threads)
    t.join();
  for (pid_t child : children) {
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    INFO("child exit status: 1 a miss, 2 a partial or foreign entry, 3 no loads");
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  for (const Tally& t : tallies) {
    CHECK(t.loads > 0);
    CHECK(t.misses == 0);
    CHECK(t.bad == 0);
  }
  // No temporary files are left behind.
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    CHECK(entry.path().extension() == ".fjc");
  std::filesystem::remove_all(dir);
}

TEST_CASE("disk cache: a writer killed mid-store leaves the entry readable", "[runtime][cache]") {
  const std::string dir = temp_dir("killed");
  const Versions versions(1, 2 * 1024 * 1024);
  DiskCache cache(dir);
  cache.store("k0", versions.of[0][0]);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    for (unsigned v = 0;; ++v) // until killed
      cache.store("k0", versions.of[0][v % 3]);
  }
  int loads = 0, bad = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  while (std::chrono::steady_clock::now() < until) {
    bad += !versions.complete(cache.load("k0"), 0);
    ++loads;
  }
  ::kill(child, SIGKILL);
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(loads > 0);
  CHECK(bad == 0);
  CHECK(versions.complete(cache.load("k0"), 0));
  std::filesystem::remove_all(dir); // and the killed writer's temporary file
}
