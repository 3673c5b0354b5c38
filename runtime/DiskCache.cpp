#include "flexjit/runtime/DiskCache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

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

DiskCache::DiskCache(std::string directory) : directory_(std::move(directory)) {}

DiskCache DiskCache::from_environment() {
  const char* enabled = std::getenv("FLEXJIT_CACHE");
  if (enabled && std::string_view(enabled) == "0")
    return DiskCache("");
  if (const char* dir = std::getenv("FLEXJIT_CACHE_DIR"); dir && *dir)
    return DiskCache(dir);
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    return DiskCache(std::string(xdg) + "/flexjit");
  if (const char* home = std::getenv("HOME"); home && *home)
    return DiskCache(std::string(home) + "/.cache/flexjit");
  return DiskCache("");
}

std::string DiskCache::path_for(std::string_view key) const {
  return directory_ + "/" + hash_text(key).hex() + ".fjc";
}

std::optional<std::string> DiskCache::load(std::string_view key) const {
  if (!enabled())
    return std::nullopt;
  std::ifstream in(path_for(key), std::ios::binary);
  if (!in)
    return std::nullopt;
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return decode(buffer.str(), key);
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
  if (!ok || std::rename(tmp.c_str(), final_path.c_str()) != 0)
    ::unlink(tmp.c_str());
}

} // namespace flexjit
