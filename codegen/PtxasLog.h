// Internal to codegen and above: what ptxas -v reports of each function it assembles (the
// driver's JIT writes the same lines into its verbose info log). The one reader of that
// format, for the kernel cache's spill check (spill_bytes, runtime/KernelCache.h), the
// command-line tool's `compile` and the ptx tests.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace flexjit {

// One function's lines of a ptxas -v log:
//   ptxas info    : Function properties for NAME
//       S bytes stack frame, T bytes spill stores, L bytes spill loads
//   ptxas info    : Used R registers, ..., M bytes smem, ...
struct PtxasFunctionReport {
  std::string name;
  int registers = -1; // -1: no "Used R registers" line (ptxas prints one for entry functions)
  int64_t stack_bytes = 0;
  int64_t spill_store_bytes = 0;
  int64_t spill_load_bytes = 0;
  int64_t smem_bytes = 0; // static shared memory

  int64_t spill_bytes() const { return spill_store_bytes + spill_load_bytes; }
};

// The functions of a ptxas -v log, in its order. A line reports on the function whose
// "Function properties for" line came last; report lines before the first such line make
// an unnamed function, so that no number in the log is dropped.
std::vector<PtxasFunctionReport> parse_ptxas_log(std::string_view log);

} // namespace flexjit
