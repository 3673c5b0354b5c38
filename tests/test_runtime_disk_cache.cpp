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

namespace {

// Sets an entry's last use (its modification time) to `seconds` after an hour ago.
void set_used(const DiskCache& cache, const std::string& key, int seconds) {
  const auto when = std::filesystem::file_time_type::clock::now() - std::chrono::hours(1) +
                    std::chrono::seconds(seconds);
  std::filesystem::last_write_time(cache.path_for(key), when);
}

} // namespace

TEST_CASE("disk cache: a size limit keeps the most recently used entries", "[runtime][cache]") {
  const std::string dir = temp_dir("lru");
  const std::string bytes = payload(100000, 7);
  // An entry is the payload plus its key and header: about 100 KB; room for 3.
  DiskCache probe(dir);
  probe.store("k9", bytes); // keys of one length: entries of one size
  const int64_t entry = probe.size_bytes();
  std::filesystem::remove(probe.path_for("k9"));
  DiskCache cache(dir, 3 * entry + entry / 2);
  for (int i = 0; i < 3; ++i) {
    cache.store("k" + std::to_string(i), bytes);
    set_used(cache, "k" + std::to_string(i), i); // k0 oldest
  }
  CHECK(cache.size_bytes() == 3 * entry);
  REQUIRE(cache.load("k0")); // a hit: k0 is now the most recently used
  cache.store("k3", bytes);  // over the limit: the least recently used (k1) goes
  CHECK(cache.size_bytes() <= cache.max_bytes());
  CHECK(cache.load("k0"));
  CHECK(!cache.load("k1"));
  CHECK(cache.load("k2"));
  CHECK(cache.load("k3"));
  // An entry larger than the limit is kept alone (the newest always stays).
  DiskCache tiny(dir, entry / 2);
  tiny.store("big", bytes);
  CHECK(tiny.load("big"));
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    files += e.path().extension() == ".fjc";
  CHECK(files == 1);
  std::filesystem::remove_all(dir);
}

TEST_CASE("disk cache: FLEXJIT_CACHE_MAX_BYTES sizes and errors", "[runtime][cache][errors]") {
  CHECK(DiskCache::parse_size("4096") == 4096);
  CHECK(DiskCache::parse_size("64K") == 64 << 10);
  CHECK(DiskCache::parse_size("512m") == int64_t{512} << 20);
  CHECK(DiskCache::parse_size("2G") == int64_t{2} << 30);
  for (const char* bad : {"", "0", "-5", "12T", "1.5G", "G", "99999999999999999999", " 5"})
    CHECK_THROWS_WITH(DiskCache::parse_size(bad),
                      Catch::Contains("FLEXJIT_CACHE_MAX_BYTES=") &&
                          Catch::Contains("is not a size; expected a positive number of bytes"));
  const char* saved = std::getenv("FLEXJIT_CACHE_MAX_BYTES");
  const std::string before = saved ? saved : "";
  ::setenv("FLEXJIT_CACHE_MAX_BYTES", "3M", 1);
  CHECK(DiskCache::from_environment().max_bytes() == int64_t{3} << 20);
  ::setenv("FLEXJIT_CACHE_MAX_BYTES", "lots", 1);
  CHECK_THROWS_WITH(DiskCache::from_environment(),
                    Catch::Contains("FLEXJIT_CACHE_MAX_BYTES=lots is not a size"));
  ::unsetenv("FLEXJIT_CACHE_MAX_BYTES");
  CHECK(DiskCache::from_environment().max_bytes() == kDefaultDiskCacheMaxBytes);
  if (saved)
    ::setenv("FLEXJIT_CACHE_MAX_BYTES", before.c_str(), 1);
}

TEST_CASE("disk cache: processes storing past the limit keep it, and every entry verifies",
          "[runtime][cache]") {
  // Four processes store 24 distinct keys each, ~50 KB apiece, into a directory limited to
  // ~12 entries: each evicts after its own store, so the last eviction sees every file.
  const std::string dir = temp_dir("bounded");
  constexpr int kProcs = 4, kKeys = 24;
  auto bytes_of = [](int p, int k) { return payload(50000 + 97 * k, 1000 * p + k); };
  DiskCache probe(dir);
  probe.store("probe", bytes_of(0, 0));
  const int64_t limit = 12 * probe.size_bytes();
  std::filesystem::remove(probe.path_for("probe"));
  std::vector<pid_t> children;
  for (int p = 0; p < kProcs; ++p) {
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      DiskCache cache(dir, limit);
      for (int k = 0; k < kKeys; ++k)
        cache.store("p" + std::to_string(p) + "k" + std::to_string(k), bytes_of(p, k));
      _exit(0);
    }
    children.push_back(child);
  }
  for (pid_t child : children) {
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  DiskCache cache(dir, limit);
  CHECK(cache.size_bytes() <= limit);
  int present = 0;
  for (int p = 0; p < kProcs; ++p)
    for (int k = 0; k < kKeys; ++k) {
      const std::string key = "p" + std::to_string(p) + "k" + std::to_string(k);
      if (!std::filesystem::exists(cache.path_for(key)))
        continue;
      ++present;
      const auto got = cache.load(key);
      INFO(key);
      REQUIRE(got);
      CHECK(*got == bytes_of(p, k));
    }
  CHECK(present >= 4);                 // each process's last entry, at least
  CHECK(present < kProcs * kKeys / 2); // and the limit did evict
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    CHECK(entry.path().extension() == ".fjc");
  std::filesystem::remove_all(dir);
}
