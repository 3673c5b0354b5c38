#include "flexjit/codegen/PtxasLog.h"

#include <regex>

namespace flexjit {

std::vector<PtxasFunctionReport> parse_ptxas_log(std::string_view log) {
  static const std::regex properties(R"(Function properties for (\S+))");
  static const std::regex stack(R"((\d+) bytes stack frame)");
  static const std::regex spills(R"((\d+) bytes spill stores, (\d+) bytes spill loads)");
  static const std::regex used(R"(Used (\d+) registers)");
  static const std::regex smem(R"((\d+) bytes smem)");
  std::vector<PtxasFunctionReport> functions;
  // The function this line reports on: the last one named, else a new unnamed one.
  auto current = [&]() -> PtxasFunctionReport& {
    if (functions.empty())
      functions.emplace_back();
    return functions.back();
  };
  std::cmatch m;
  while (!log.empty()) {
    const size_t end = log.find('\n');
    const std::string_view line = log.substr(0, end);
    log = end == std::string_view::npos ? std::string_view() : log.substr(end + 1);
    const char *first = line.data(), *last = line.data() + line.size();
    if (std::regex_search(first, last, m, properties)) {
      functions.push_back({m[1].str()});
      continue;
    }
    if (std::regex_search(first, last, m, stack))
      current().stack_bytes = std::stoll(m[1].str());
    if (std::regex_search(first, last, m, spills)) {
      current().spill_store_bytes = std::stoll(m[1].str());
      current().spill_load_bytes = std::stoll(m[2].str());
    }
    if (std::regex_search(first, last, m, used))
      current().registers = std::stoi(m[1].str());
    if (std::regex_search(first, last, m, smem))
      current().smem_bytes = std::stoll(m[1].str());
  }
  return functions;
}

} // namespace flexjit
