// codegen/PtxasLog.h: ptxas -v's lines read into one report per function, and the kernel
// cache's spill_bytes, their sum.
#include <catch2/catch.hpp>

#include "flexjit/codegen/PtxasLog.h"
#include "flexjit/runtime/KernelCache.h"

using namespace flexjit;

namespace {

// ptxas 13.0's -v output for a kernel and a non-inlined device function it calls (no "Used"
// line: not an entry), as `flexjit compile` reads it.
constexpr const char* kLog =
    "ptxas info    : 0 bytes gmem\n"
    "ptxas info    : Function properties for helper\n"
    "    8 bytes stack frame, 4 bytes spill stores, 4 bytes spill loads\n"
    "ptxas info    : Compiling entry function 'kernel' for 'sm_90a'\n"
    "ptxas info    : Function properties for kernel\n"
    "    48 bytes stack frame, 40 bytes spill stores, 36 bytes spill loads\n"
    "ptxas info    : Used 255 registers, used 1 barriers, 48 bytes cumulative stack size, "
    "1024 bytes smem, 592 bytes cmem[0]\n"
    "ptxas info    : Compile time = 356.248 ms";

} // namespace

TEST_CASE("ptxas log: one report per function", "[codegen][cache]") {
  const std::vector<PtxasFunctionReport> functions = parse_ptxas_log(kLog);
  REQUIRE(functions.size() == 2);
  CHECK(functions[0].name == "helper");
  CHECK(functions[0].registers == -1);
  CHECK(functions[0].stack_bytes == 8);
  CHECK(functions[0].spill_bytes() == 8);
  CHECK(functions[1].name == "kernel");
  CHECK(functions[1].registers == 255);
  CHECK(functions[1].stack_bytes == 48);
  CHECK(functions[1].spill_store_bytes == 40);
  CHECK(functions[1].spill_load_bytes == 36);
  CHECK(functions[1].smem_bytes == 1024);
  CHECK(spill_bytes(kLog) == 8 + 76);
}

TEST_CASE("ptxas log: no function, or numbers before the first", "[codegen][cache]") {
  CHECK(parse_ptxas_log("").empty());
  CHECK(parse_ptxas_log("ptxas info    : 0 bytes gmem\n").empty());
  CHECK(spill_bytes("ptxas fatal   : Unresolved extern function 'f'\n") == 0);
  // A log cut before its first "Function properties" line keeps its numbers.
  const std::string cut = "    0 bytes stack frame, 16 bytes spill stores, 8 bytes spill loads\n"
                          "ptxas info    : Used 32 registers\n";
  const std::vector<PtxasFunctionReport> functions = parse_ptxas_log(cut);
  REQUIRE(functions.size() == 1);
  CHECK(functions[0].name.empty());
  CHECK(functions[0].registers == 32);
  CHECK(spill_bytes(cut) == 24);
}
