#include "flexjit/runtime/DiskCache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "flexjit/support/Error.h"
#include "flexjit/support/Hash.h"

namespace flexjit {

namespace {

constexpr std::string_view kMagic = "FLEXJITC1\n";

std::string checksum(std::string_view bytes) {
  return hash_text(bytes).hex();
}

// Entry layout: magic, key length, key, payload length, payload checksum, payload.
std::string encode(std::string_view key, std::string_view bytes) {
  std::string out(kMagic);
  out += std::to_string(key.size()) + "\n";
  out += key;
  out += "\n" + std::to_string(bytes.size()) + "\n" + checksum(bytes) + "\n";
  out += bytes;
  return out;
}

std::optional<std::string> decode(std::string_view data, std::string_view key) {
  if (data.substr(0, kMagic.size()) != kMagic)
    return std::nullopt;
  data.remove_prefix(kMagic.size());
  auto read_line = [&]() -> std::optional<std::string_view> {
    size_t nl = data.find('\n');
    if (nl == std::string_view::npos)
      return std::nullopt;
    std::string_view line = data.substr(0, nl);
    data.remove_prefix(nl + 1);
    return line;
  };
  auto read_size = [&]() -> std::optional<size_t> {
    auto line = read_line();
    if (!line || line->empty() || line->size() > 19)
      return std::nullopt;
    size_t v = 0;
    for (char c : *line) {
      if (c < '0' || c > '9')
        return std::nullopt;
      v = v * 10 + static_cast<size_t>(c - '0');
    }
    return v;
  };
  auto key_size = read_size();
  if (!key_size || data.size() < *key_size + 1 || data.substr(0, *key_size) != key ||
      data[*key_size] != '\n')
    return std::nullopt;
  data.remove_prefix(*key_size + 1);
  auto size = read_size();
  auto sum = read_line();
  if (!size || !sum || data.size() != *size)
    return std::nullopt;
  if (checksum(data) != *sum)
    return std::nullopt;
  return std::string(data);
}

} // namespace

DiskCache::DiskCache(std::string directory, int64_t max_bytes)
    : directory_(std::move(directory)), max_bytes_(max_bytes) {
  FLEXJIT_ASSERT(max_bytes > 0, "disk cache limit {} bytes", max_bytes);
}

int64_t DiskCache::parse_size(std::string_view text, std::string_view variable) {
  int64_t value = 0;
  size_t i = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9' && value <= (INT64_MAX >> 31); ++i)
    value = value * 10 + (text[i] - '0');
  int shift = 0;
  if (i + 1 == text.size()) {
    switch (text[i]) {
    case 'K':
    case 'k':
      shift = 10;
      break;
    case 'M':
    case 'm':
      shift = 20;
      break;
    case 'G':
    case 'g':
      shift = 30;
      break;
    default:
      shift = -1;
    }
    ++i;
  }
  if (i == 0 || i != text.size() || shift < 0 || value == 0 ||
      !std::isdigit(static_cast<unsigned char>(text[0])))
    fail("{}={} is not a size; expected a positive number of bytes, optionally with a K, M "
         "or G suffix (e.g. 512M)",
         variable, text);
  return value << shift;
}

DiskCache DiskCache::from_environment() {
  int64_t max_bytes = kDefaultDiskCacheMaxBytes;
  if (const char* limit = std::getenv("FLEXJIT_CACHE_MAX_BYTES"); limit && *limit)
    max_bytes = parse_size(limit);
  const char* enabled = std::getenv("FLEXJIT_CACHE");
  if (enabled && std::string_view(enabled) == "0")
    return DiskCache("", max_bytes);
  if (const char* dir = std::getenv("FLEXJIT_CACHE_DIR"); dir && *dir)
    return DiskCache(dir, max_bytes);
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    return DiskCache(std::string(xdg) + "/flexjit", max_bytes);
  if (const char* home = std::getenv("HOME"); home && *home)
    return DiskCache(std::string(home) + "/.cache/flexjit", max_bytes);
  return DiskCache("", max_bytes);
}

std::string DiskCache::path_for(std::string_view key) const {
  return directory_ + "/" + hash_text(key).hex() + ".fjc";
}

std::optional<std::string> DiskCache::load(std::string_view key) const {
  if (!enabled())
    return std::nullopt;
  const std::string path = path_for(key);
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return std::nullopt;
  std::ostringstream buffer;
  buffer << in.rdbuf();
  std::optional<std::string> entry = decode(buffer.str(), key);
  if (entry) // used now: the last to be evicted (mtime, as atime is often not kept)
    ::utimensat(AT_FDCWD, path.c_str(), nullptr, 0);
  return entry;
}

int64_t DiskCache::size_bytes() const {
  int64_t total = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(directory_, ec)) {
    std::error_code fec;
    const auto bytes = e.file_size(fec);
    if (!fec && e.path().extension() == ".fjc")
      total += static_cast<int64_t>(bytes);
  }
  return total;
}

void DiskCache::evict(const std::string& keep) const {
  struct Entry {
    std::string path;
    int64_t bytes;
    std::filesystem::file_time_type used;
  };
  std::vector<Entry> entries;
  int64_t total = 0;
  std::error_code ec;
  const auto now = std::filesystem::file_time_type::clock::now();
  for (const auto& e : std::filesystem::directory_iterator(directory_, ec)) {
    std::error_code fec;
    const std::string path = e.path().string();
    const auto used = e.last_write_time(fec);
    const auto bytes = static_cast<int64_t>(e.file_size(fec));
    if (fec)
      continue; // removed meanwhile by another process
    if (e.path().extension() != ".fjc") {
      // A store's temporary file, left by a process that died an hour ago or more.
      if (path.find(".fjc.tmp.") != std::string::npos && now - used > std::chrono::hours(1))
        std::filesystem::remove(e.path(), fec);
      continue;
    }
    total += bytes;
    if (path != keep)
      entries.push_back({path, bytes, used});
  }
  if (total <= max_bytes_)
    return;
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.used < b.used; });
  for (const Entry& e : entries) {
    if (total <= max_bytes_)
      break;
    std::error_code fec;
    std::filesystem::remove(e.path, fec); // another process may have removed it first
    total -= e.bytes;
  }
}

void DiskCache::store(std::string_view key, std::string_view bytes) const {
  if (!enabled())
    return;
  std::error_code ec;
  std::filesystem::create_directories(directory_, ec);
  static std::atomic<uint64_t> counter{0};
  std::string final_path = path_for(key);
  std::string tmp =
      final_path + ".tmp." + std::to_string(getpid()) + "." + std::to_string(counter.fetch_add(1));
  std::string data = encode(key, bytes);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    return;
  size_t written = 0;
  while (written < data.size()) {
    ssize_t n = ::write(fd, data.data() + written, data.size() - written);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    written += static_cast<size_t>(n);
  }
  bool ok = written == data.size() && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || std::rename(tmp.c_str(), final_path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return;
  }
  evict(final_path);
}

} // namespace flexjit
