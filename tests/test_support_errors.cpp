// The errors of README.md's "Errors" table that no other test file covers, one
// test case per group, and a check that the table stays complete: every
// fail(...) in the library's sources appears in it, and every test it names exists.
#include <catch2/catch.hpp>

#include <climits>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <flexjit/flexjit.h>

#include "flexjit/testing/SeedMods.h"
#include "flexjit/compiler/Interpreter.h"
#include "flexjit/codegen/HostJit.h"
#include "flexjit/codegen/PackArgs.h"

using namespace flexjit;
using Catch::Contains;

namespace {

const int32_t kData[4] = {1, 2, 3, 4};

TensorView i32_view(std::initializer_list<int64_t> sizes) {
  return TensorView::contiguous(kData, DType::I32, sizes);
}

// Reads every buffer it is given, by q_idx.
BoolExpr reads(const std::vector<IntBuffer>& buffers) {
  BoolExpr body = true;
  for (const IntBuffer& b : buffers)
    body = body && b[var_q()] > 0;
  return body;
}

} // namespace

TEST_CASE("errors: names of mods, buffers and params", "[errors]") {
  REQUIRE_THROWS_WITH(MaskMod("", BoolExpr(true)), Contains("a mask_mod needs a non-empty name"));
  REQUIRE_THROWS_WITH(ScoreMod("", var_score()), Contains("a score_mod needs a non-empty name"));
  REQUIRE_THROWS_WITH(param_i32(""), Contains("a param needs a non-empty name"));
  REQUIRE_THROWS_WITH(Buffer("", DType::I32, 1), Contains("a buffer needs a non-empty name"));
  REQUIRE_THROWS_WITH(MaskMod("sliding window", BoolExpr(true)),
                      Contains("mask_mod name 'sliding window' has character ' '"));
  REQUIRE_THROWS_WITH(param_f32("w-1"), Contains("param name 'w-1' has character '-'"));
  REQUIRE_THROWS_WITH(buffer_i32("doc.ids", i32_view({4})),
                      Contains("buffer name 'doc.ids' has character '.'"));
}

TEST_CASE("errors: buffers declared or bound to data that does not fit", "[errors]") {
  REQUIRE_THROWS_WITH(Buffer("table", DType::F32, 5),
                      Contains("buffer 'table' has rank 5; expected 1 to 4"));
  REQUIRE_THROWS_WITH(Buffer("table", DType::F32, 0), Contains("has rank 0; expected 1 to 4"));
  Buffer ids("ids", DType::I32, 1);
  const float f[4] = {};
  REQUIRE_THROWS_WITH(ids.bind(TensorView::contiguous(f, DType::F32, {4})),
                      Contains("buffer 'ids' is declared i32 but was bound to f32 data"));
  REQUIRE_THROWS_WITH(ids.bind(i32_view({2, 2})),
                      Contains("buffer 'ids' has rank 1 but was bound to a rank-2 tensor"));
  REQUIRE_THROWS_WITH(ids.bind(TensorView::contiguous(nullptr, DType::I32, {4})),
                      Contains("buffer 'ids' was bound to a null data pointer"));
  REQUIRE_THROWS_WITH(ids.bind(i32_view({int64_t{1} << 31})),
                      Contains("buffer 'ids' has size 2147483648 in dimension 0; expected 0 to "
                               "2147483647"));
  REQUIRE_NOTHROW(ids.bind(TensorView::contiguous(nullptr, DType::I32, {0}))); // empty: no data
}

TEST_CASE("errors: expressions of the wrong type, or empty", "[errors]") {
  REQUIRE_THROWS_WITH(IntExpr(Expr()),
                      Contains("an empty expression was used where an int (IntExpr) was "
                               "expected"));
  REQUIRE_THROWS_WITH(IntExpr(var_score()),
                      Contains("a float expression was used where an int (IntExpr) was expected"));
  REQUIRE_THROWS_WITH(BoolExpr(Expr(var_q())),
                      Contains("a int expression was used where a bool (BoolExpr) was expected"));
  REQUIRE_THROWS_WITH(match_types(make_bool(true), var_q()),
                      Contains("cannot combine a bool with a int; cast one of them explicitly"));
  REQUIRE_THROWS_WITH(to_int(Expr()), Contains("cannot cast an empty expression"));
}

TEST_CASE("errors: tensor views of unsupported rank or negative size", "[errors]") {
  REQUIRE_THROWS_WITH(i32_view({1, 1, 1, 1, 1}),
                      Contains("tensor rank 5 is not supported; expected 1 to 4"));
  REQUIRE_THROWS_WITH(i32_view({}), Contains("tensor rank 0 is not supported"));
  REQUIRE_THROWS_WITH(i32_view({2, -3}),
                      Contains("tensor size -3 in dimension 1 is negative; expected >= 0"));
}

TEST_CASE("errors: a kernel's buffers and params", "[errors]") {
  const IntBuffer a = buffer_i32("dup", i32_view({4}));
  const IntBuffer b = buffer_i32("dup", i32_view({4}));
  REQUIRE_THROWS_WITH(Program(reads({a, b})),
                      Contains("two different buffers are named 'dup' in one kernel"));
  const MaskMod mixed("mixed", param_i32("p") > 0 && param_f32("p") > 0.0f);
  REQUIRE_THROWS_WITH(create_block_mask(mixed, 1, 1, 128, 128),
                      Contains("param 'p' is used both as") &&
                          Contains("expected one type per name"));

  std::vector<IntBuffer> nine;
  for (int i = 0; i < 9; ++i)
    nine.push_back(buffer_i32("b" + std::to_string(i), i32_view({4})));
  REQUIRE_THROWS_WITH(Program(reads(nine)),
                      Contains("a kernel's mods read 9 buffers; at most 8 are supported"));
  BoolExpr ints = true, floats = true;
  for (int i = 0; i < 17; ++i) {
    ints = ints && param_i32("i" + std::to_string(i), 0) > 0;
    floats = floats && param_f32("f" + std::to_string(i), 0.0f) > 0.0f;
  }
  REQUIRE_THROWS_WITH(Program(ints),
                      Contains("a kernel's mods read 17 int params; at most 16 are supported"));
  REQUIRE_THROWS_WITH(Program(floats),
                      Contains("a kernel's mods read 17 float params; at most 16 are supported"));
  const IntBuffer unbound("later", DType::I32, 1);
  REQUIRE_THROWS_WITH(Program(unbound[var_q()] > 0),
                      Contains("buffer 'later' has no data; capture data when declaring it or "
                               "bind it at call time"));
}

TEST_CASE("errors: call-time bindings that do not fit", "[errors]") {
  const IntBuffer ids = buffer_i32("ids", i32_view({4}));
  const IntExpr w = param_i32("w");
  const MaskMod m("m", ids[var_q()] > w);
  Bindings bad_rank;
  bad_rank.params["w"] = 1;
  bad_rank.buffers["ids"] = i32_view({2, 2});
  REQUIRE_THROWS_WITH(create_mask(m, 1, 1, 4, 4, bad_rank),
                      Contains("buffer 'ids' has rank 1 but is bound to a rank-2 tensor"));
  Bindings null_data;
  null_data.params["w"] = 1;
  null_data.buffers["ids"] = TensorView::contiguous(nullptr, DType::I32, {4});
  REQUIRE_THROWS_WITH(create_mask(m, 1, 1, 4, 4, null_data),
                      Contains("buffer 'ids' is bound to a null data pointer"));
  for (double bad : {1.5, 3e9, -3e9}) {
    Bindings params;
    params.params["w"] = bad;
    INFO("w = " << bad);
    REQUIRE_THROWS_WITH(create_block_mask(m, 1, 1, 128, 128, {128, 128, params}),
                        Contains("int param 'w' is bound to") &&
                            Contains("expected an integer in int32 range"));
  }
}

TEST_CASE("errors: BlockMask tile queries outside the mask", "[errors][blockmask]") {
  const BlockMask bm = create_block_mask(seeds::causal(), 2, 3, 256, 384);
  REQUIRE(bm.tile_state(1, 2, 1, 1) == 1); // the diagonal: partial
  REQUIRE_THROWS_WITH(bm.tile_state(2, 0, 0, 0),
                      Contains("tile_state: (b, h) = (2, 0) is outside B = 2, H = 3"));
  REQUIRE_THROWS_WITH(bm.tile_state(0, -1, 0, 0), Contains("(b, h) = (0, -1)"));
  REQUIRE_THROWS_WITH(bm.tile_state(0, 0, 2, 0),
                      Contains("tile (2, 0) is outside the 2 x 3 block grid"));
  REQUIRE_THROWS_WITH(bm.tile_state(0, 0, 0, 3), Contains("tile (0, 3) is outside"));
}

TEST_CASE("errors: the GPU block mask builder's limits, checked before any CUDA call",
          "[errors][blockmask]") {
  const MaskMod per_head =
      mask_mod("per_head", [](Idx b, Idx h, Idx q, Idx kv) { return q + b + h >= kv; });
  BlockMaskOptions on_gpu;
  on_gpu.device = Device::Cuda;
  REQUIRE_THROWS_WITH(create_block_mask(per_head, 300, 300, 128, 128, on_gpu),
                      Contains("create_block_mask on the GPU: B * H = 90000 and num_q_blocks = 1 "
                               "must be at most 65535"));
  BlockMaskOptions huge_tiles = on_gpu;
  huge_tiles.q_block = huge_tiles.kv_block = 65536;
  REQUIRE_THROWS_WITH(create_block_mask(per_head, 1, 1, 128, 128, huge_tiles),
                      Contains("create_block_mask on the GPU: a 65536 x 65536 tile is too large"));
}

TEST_CASE("errors: DeviceBuffer ranges and views, checked before any CUDA call", "[errors]") {
  DeviceBuffer empty; // no allocation, no CUDA needed
  char host[16] = {};
  REQUIRE_THROWS_WITH(empty.upload(host, 16),
                      Contains("DeviceBuffer::upload: 16 bytes at offset 0 do not fit in a buffer "
                               "of 0 bytes"));
  REQUIRE_THROWS_WITH(empty.download(host, 4, 8), Contains("DeviceBuffer::download: 4 bytes at "
                                                           "offset 8"));
  REQUIRE_THROWS_WITH(empty.view(DType::F16, {2, 4}),
                      Contains("DeviceBuffer::view: 16 bytes of f16 do not fit in a buffer of 0 "
                               "bytes"));
  REQUIRE_THROWS_WITH(empty.view(DType::F16, {2, 4}, {4}),
                      Contains("DeviceBuffer::view: 2 sizes and 1 strides (expected equal counts, "
                               "at most 4)"));
  REQUIRE_THROWS_WITH(empty.view(DType::F16, {2, 4}, {-4, 1}),
                      Contains("DeviceBuffer::view: negative stride -4 in dimension 0"));
  REQUIRE_THROWS_WITH(empty.view(DType::F32, {2, 4}, {8, 1}),
                      Contains("DeviceBuffer::view: the strided view reaches 48 bytes, the buffer "
                               "has 0"));
}

TEST_CASE("errors: time_on_stream with no repetitions", "[errors]") {
  REQUIRE_THROWS_WITH(
      time_on_stream(Stream{}, [] {}, 0), Contains("time_on_stream: reps must be positive, got 0"));
}

TEST_CASE("errors: a broken internal invariant is an Error too", "[errors]") {
  const HostJitMod score = HostJitMod::compile(seeds::soft_cap(20.0f));
  const FlexjitModArgs args{};
  REQUIRE_THROWS_WITH(score.mask(0, 0, 0, 0, args),
                      Contains("flexjit internal error at ") &&
                          Contains("HostJitMod::mask on a mod that is not a mask_mod"));
}

// README.md's "Errors" table against the sources: every message format of a
// fail(...) call (its first string literal) is in the table, and every test
// case the table names exists. Needs the source tree (skips without it).
TEST_CASE("errors: README's error table lists every fail() and real tests", "[errors]") {
  namespace fs = std::filesystem;
  const fs::path root = FLEXJIT_SOURCE_DIR;
  if (!fs::exists(root / "README.md")) {
    SUCCEED("skipped: no source tree at " << root);
    return;
  }
  auto read = [](const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  const std::string readme = read(root / "README.md");
  const size_t table = readme.find("## Errors");
  REQUIRE(table != std::string::npos);
  const std::string errors = readme.substr(table, readme.find("\n## ", table + 1) - table);

  const std::regex fail_call(R"re(\bfail\(\s*"((?:[^"\\]|\\.)*)")re");
  int messages = 0;
  for (const char* module : {"dsl", "compiler", "codegen", "runtime", "blockmask"})
    for (const auto& entry : fs::directory_iterator(root / module)) {
      if (entry.path().extension() != ".cpp" && entry.path().extension() != ".h")
        continue;
      const std::string source = read(entry.path());
      for (auto it = std::sregex_iterator(source.begin(), source.end(), fail_call);
           it != std::sregex_iterator(); ++it) {
        std::string format = (*it)[1];
        if (format == "flexjit: ") // the definition of fail() itself
          continue;
        // A table cell shows "|" as "\|".
        format = std::regex_replace(format, std::regex(R"(\|)"), R"(\|)");
        INFO(entry.path().filename().string() << ": fail(\"" << format << "\")");
        CHECK(errors.find(format) != std::string::npos);
        ++messages;
      }
    }
  CHECK(messages >= 80);

  std::set<std::string> names;
  for (const Catch::TestCase& test : Catch::getRegistryHub().getTestCaseRegistry().getAllTests())
    names.insert(test.getTestCaseInfo().name);
  const std::regex quoted(R"re("([^"]+)")re");
  int cited = 0;
  std::istringstream lines(errors);
  for (std::string line; std::getline(lines, line);) {
    const size_t last_cell = line.rfind(" | ");
    if (line.rfind("| ", 0) != 0 || last_cell == std::string::npos)
      continue;
    const std::string tests = line.substr(last_cell);
    for (auto it = std::sregex_iterator(tests.begin(), tests.end(), quoted);
         it != std::sregex_iterator(); ++it, ++cited) {
      INFO("README names test \"" << (*it)[1] << "\"");
      CHECK(names.count((*it)[1]) == 1);
    }
  }
  CHECK(cited >= 80);
}
