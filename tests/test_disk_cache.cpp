#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <string_view>
#include <thread>

#include <fmt/format.h>

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

uint64_t fnv1a(std::string_view bytes) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes)
    h = (h ^ c) * 1099511628211ull;
  return h;
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

namespace {

// A payload that checks itself: "key version size fnv1a64\n" and `n` bytes.
std::string checked_payload(unsigned key, unsigned version, size_t n) {
  std::string body = payload(n, key * 1000 + version);
  return fmt::format("{} {} {} {:016x}\n", key, version, n, fnv1a(body)) + body;
}

// Whether `bytes` is a complete payload of `key` (any version) with a matching hash.
bool payload_ok(const std::string& bytes, unsigned key) {
  const size_t nl = bytes.find('\n');
  if (nl == std::string::npos)
    return false;
  unsigned k = 0, version = 0;
  size_t n = 0;
  unsigned long long hash = 0;
  if (std::sscanf(bytes.substr(0, nl).c_str(), "%u %u %zu %llx", &k, &version, &n, &hash) != 4)
    return false;
  const std::string_view body = std::string_view(bytes).substr(nl + 1);
  return k == key && body.size() == n && fnv1a(body) == hash;
}

struct Tally {
  int stores = 0, loads = 0, misses = 0, bad = 0;
};

// Random stores and loads of keys "k0".."k{keys-1}" (every key stored before):
// every load must hit, with one complete version of its key.
Tally hammer(const std::string& dir, unsigned seed, int ops, unsigned keys) {
  DiskCache cache(dir);
  std::mt19937 rng(seed);
  Tally t;
  for (int i = 0; i < ops; ++i) {
    const unsigned key = rng() % keys;
    const std::string name = "k" + std::to_string(key);
    if (rng() % 2) {
      const unsigned version = rng() % 3;
      cache.store(name, checked_payload(key, version, (1 + version) * 700000 + key));
      ++t.stores;
      continue;
    }
    ++t.loads;
    const std::optional<std::string> got = cache.load(name);
    t.misses += !got;
    t.bad += got && !payload_ok(*got, key);
  }
  return t;
}

} // namespace

TEST_CASE("disk cache: processes racing on the same keys never see a partial entry", "[cache]") {
  // Four processes (two threads in this one) store and load three keys with
  // 0.7-2.1 MB entries. Every key exists from the start and a store replaces an
  // entry by renaming a complete file over it, so a load that misses or returns
  // anything but one whole version means a reader saw a half-written entry.
  const std::string dir = temp_dir("race");
  constexpr unsigned kKeys = 3;
  constexpr int kOps = 40;
  {
    DiskCache cache(dir);
    for (unsigned k = 0; k < kKeys; ++k)
      cache.store("k" + std::to_string(k), checked_payload(k, 0, 700000 + k));
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
      const Tally t = hammer(dir, 100 + p, kOps, kKeys);
      _exit(t.misses ? 1 : t.bad ? 2 : t.loads == 0 ? 3 : 0);
    }
    children.push_back(child);
  }
  ::close(go[0]);
  ::close(go[1]); // go
  std::vector<Tally> tallies(2);
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < tallies.size(); ++t)
    threads.emplace_back([&, t] { tallies[t] = hammer(dir, t, kOps, kKeys); });
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

TEST_CASE("disk cache: a writer killed mid-store leaves the entry readable", "[cache]") {
  const std::string dir = temp_dir("killed");
  DiskCache cache(dir);
  cache.store("k0", checked_payload(0, 0, 700000));
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    for (unsigned v = 0;; ++v) // until killed
      cache.store("k0", checked_payload(0, v % 3, 4000000 + v % 3));
  }
  int loads = 0, bad = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  while (std::chrono::steady_clock::now() < until) {
    const std::optional<std::string> got = cache.load("k0");
    bad += !got || !payload_ok(*got, 0);
    ++loads;
  }
  ::kill(child, SIGKILL);
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  const std::optional<std::string> last = cache.load("k0");
  CHECK(loads > 0);
  CHECK(bad == 0);
  REQUIRE(last);
  CHECK(payload_ok(*last, 0));
  std::filesystem::remove_all(dir); // and the killed writer's temporary file
}
