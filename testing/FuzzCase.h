// The fuzz corpus: every mismatch the differential fuzzers ever found, kept as
// a text case that rebuilds the exact expression DAG, its params, its buffers
// (sizes, strides and bytes) and the points where it failed. A failing fuzz
// run prints such a case; saved as tests/fuzz_corpus/<name>.fz it becomes a
// regression test (CPU: test_codegen_lowering.cpp; GPU: test_codegen_gpu_fuzz.cpp). The files
// are embedded in the test binary at configure time (tests/CMakeLists.txt), so
// an installed flexjit_tests runs them without the source tree.
//
// Format (one item per line, '#' lines are comments):
//   mod mask|score
//   param <name>:int = <int>          | param <name>:float = 0x<bits>
//   buffer <name>:<dtype>:<rank> sizes <n>... strides <n>... data <hex bytes>|null
//   point <b> <h> <q> <kv> 0x<score bits>
//   body
//   <compiler/Printer.h's text of the body: let lines, then the root>
//   score                                  (a pair only: `mod pair`)
//   <the score body's text, over the same buffers and params>
// `mod pair` is a mask body and a score body read through one set of buffers and params (an
// attention fuzz case, testing/AttentionFuzz.h): FuzzCase::mod.body is the mask, mod.score
// the score.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "flexjit/testing/RandomMods.h"

namespace flexjit::testing {

struct FuzzCase {
  std::string name;
  std::string comment; // the '#' lines: what was found, where, what fixed it
  bool is_mask = true;
  bool is_pair = false; // `mod pair`: mod.body the mask, mod.score the score
  RandomMod mod;        // body (and score), bindings, storage
  std::vector<Point> points;
};

// The case text for `body` (as written, before optimization) with the params
// and buffers it reads resolved from `bindings`; with a `score`, the pair (body the mask).
std::string format_case(const Expr& body, const Bindings& bindings,
                        const std::vector<Point>& points, const std::string& comment,
                        const Expr& score = Expr());

// Parses a case; throws std::runtime_error naming the line on a syntax error.
FuzzCase parse_case(std::string name, std::string_view text);

// The embedded tests/fuzz_corpus/*.fz files, as (file name, text).
const std::vector<std::pair<std::string, std::string>>& fuzz_corpus();

} // namespace flexjit::testing
