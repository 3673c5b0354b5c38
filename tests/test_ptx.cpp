// Every kernel template x every seed mask x every architecture compiles to PTX
// that ptxas accepts with no spills and with the mask hook inlined.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "codegen/Codegen.h"
#include "compiler/Passes.h"
#include "tests/RandomMods.h"
#include "tests/SeedCatalog.h"

using namespace flexjit;
using flexjit::testing::SeedCatalog;

namespace {

struct PtxasResult {
  int status = -1;
  std::string log;
};

PtxasResult run_ptxas(const std::string& ptx, Arch arch) {
  const auto dir = std::filesystem::temp_directory_path();
  const std::string stem = (dir / fmt::format("flexjit_test_{}", getpid())).string();
  { std::ofstream(stem + ".ptx") << ptx; }
  const std::string command = fmt::format("'{}' -arch={} -v '{}.ptx' -o '{}.cubin' 2>&1",
                                          FLEXJIT_PTXAS, to_string(arch), stem, stem);
  PtxasResult result;
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe);
  std::array<char, 4096> chunk;
  while (size_t n = fread(chunk.data(), 1, chunk.size(), pipe))
    result.log.append(chunk.data(), n);
  result.status = pclose(pipe);
  std::filesystem::remove(stem + ".ptx");
  std::filesystem::remove(stem + ".cubin");
  return result;
}

// The register counts of every function in a ptxas -v log.
std::vector<int> registers(const std::string& log) {
  std::vector<int> counts;
  const std::regex used(R"(Used (\d+) registers)");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), used); it != std::sregex_iterator();
       ++it)
    counts.push_back(std::stoi((*it)[1]));
  return counts;
}

bool verbose() {
  return std::getenv("FLEXJIT_TEST_VERBOSE") != nullptr;
}

// ptxas accepts the kernel with no spills in any function; returns the kernel's
// register count.
int check_with_ptxas(const CompiledKernel& kernel, Arch arch) {
  const PtxasResult ptxas = run_ptxas(kernel.ptx, arch);
  INFO(ptxas.log);
  REQUIRE(ptxas.status == 0);
  const std::regex spills(R"((\d+) bytes spill stores, (\d+) bytes spill loads)");
  int functions = 0;
  for (auto it = std::sregex_iterator(ptxas.log.begin(), ptxas.log.end(), spills);
       it != std::sregex_iterator(); ++it, ++functions) {
    REQUIRE((*it)[1] == "0");
    REQUIRE((*it)[2] == "0");
  }
  REQUIRE(functions >= 1);
  const std::vector<int> regs = registers(ptxas.log);
  REQUIRE(regs.size() == static_cast<size_t>(functions));
  return regs[0];
}

} // namespace

TEST_CASE("ptx: every template x seed mask x arch passes ptxas without spills", "[codegen]") {
  const SeedCatalog seeds;
  int compiled = 0;
  for (TemplateKind kind : all_templates()) {
    for (Arch arch : {Arch::SM80, Arch::SM90a}) {
      for (size_t i = 0; i < seeds.masks.size(); ++i) {
        const KernelSpec spec{kind, arch, seeds.masks[i], seeds.scores[i % seeds.scores.size()]};
        INFO(to_string(kind) << " " << to_string(arch) << " mask " << spec.mask.name() << " score "
                             << spec.score.name());
        const CompiledKernel kernel = compile_to_ptx(spec);
        REQUIRE(kernel.ptx.find(fmt::format(".target {}", to_string(arch))) != std::string::npos);
        REQUIRE(kernel.ptx.find(".entry " + kernel.entry) != std::string::npos);
        // The hooks were inlined and dropped, and libdevice's reflection resolved.
        REQUIRE(kernel.ptx.find("flexjit_mask_mod") == std::string::npos);
        REQUIRE(kernel.ptx.find("flexjit_score_mod") == std::string::npos);
        REQUIRE(kernel.ptx.find("__nvvm_reflect") == std::string::npos);

        const int regs = check_with_ptxas(kernel, arch);
        if (verbose())
          fmt::print("{:15} {:7} {:24} {:3} registers  {:6.1f} ms\n", to_string(kind),
                     to_string(arch), spec.mask.name(), regs, kernel.times.total_ms);
        ++compiled;
      }
    }
  }
  REQUIRE(compiled == 2 * 2 * static_cast<int>(seeds.masks.size()));
}

TEST_CASE("ptx: score mods of every kind compile into a template", "[codegen]") {
  const SeedCatalog seeds;
  for (const ScoreMod& score : seeds.scores) {
    INFO("score " << score.name());
    const CompiledKernel kernel =
        compile_to_ptx({TemplateKind::CreateMask, Arch::SM90a, seeds::causal(), score});
    REQUIRE(!kernel.ptx.empty());
  }
}

TEST_CASE("ptx: the kernel key changes with what changes the code, and only that", "[codegen]") {
  const KernelSpec spec{TemplateKind::BlockClassify, Arch::SM90a, seeds::sliding_window(128),
                        seeds::alibi()};
  KernelSpec renamed = spec;
  renamed.mask = MaskMod("renamed", spec.mask.body());
  KernelSpec other_window = spec;
  other_window.mask = seeds::sliding_window(4096); // a param: same code
  KernelSpec other_arch = spec;
  other_arch.arch = Arch::SM80;
  KernelSpec other_template = spec;
  other_template.kind = TemplateKind::CreateMask;
  KernelSpec other_mask = spec;
  other_mask.mask = seeds::causal();

  const std::string key = kernel_key(spec);
  REQUIRE(key == kernel_key(renamed));
  REQUIRE(key == kernel_key(other_window));
  REQUIRE(key != kernel_key(other_arch));
  REQUIRE(key != kernel_key(other_template));
  REQUIRE(key != kernel_key(other_mask));
  const std::string text = kernel_key_text(spec);
  REQUIRE(text.find("sm_90a") != std::string::npos);
  REQUIRE(text.find("window") != std::string::npos);
  REQUIRE(compile_to_ptx(spec).key == key);
}

TEST_CASE("ptx: pack_mod_args fills the slots of the signature and zeroes the rest", "[codegen]") {
  std::vector<int32_t> ids(10, 7);
  const MaskMod doc = seeds::document(ids);
  const CompiledKernel kernel = compile_to_ptx(
      {TemplateKind::CreateMask, Arch::SM80, and_masks(doc, seeds::sliding_window(5)), ScoreMod()});
  const ModSignature& sig = kernel.signature;
  REQUIRE(sig.buffers.size() == 1);
  REQUIRE(sig.int_params.size() == 1);
  const FlexjitModArgs args = pack_mod_args(sig, resolve(sig, {}));
  REQUIRE(args.buffers[0].data == ids.data());
  REQUIRE(args.buffers[0].sizes[0] == 10);
  REQUIRE(args.buffers[0].strides[0] == 1);
  REQUIRE(args.buffers[0].sizes[1] == 0);
  REQUIRE(args.buffers[1].data == nullptr);
  REQUIRE(args.int_params[0] == 5);
  REQUIRE(args.int_params[1] == 0);
}

TEST_CASE("ptx: concurrent compiles are independent and deterministic", "[codegen]") {
  const SeedCatalog seeds;
  const KernelSpec spec{TemplateKind::BlockClassify, Arch::SM80, seeds.masks[3], seeds.scores[3]};
  const std::string reference = compile_to_ptx(spec).ptx;
  std::vector<std::string> ptx(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < ptx.size(); ++i)
    threads.emplace_back([&, i] { ptx[i] = compile_to_ptx(spec).ptx; });
  for (std::thread& t : threads)
    t.join();
  for (const std::string& p : ptx)
    REQUIRE(p == reference);
}

TEST_CASE("ptx: random mods of every node kind and buffer dtype pass ptxas", "[codegen]") {
  std::mt19937 rng(77);
  for (int i = 0; i < 24; ++i) {
    // Float bodies reach the GPU through a mask here: these templates drop score_mod.
    const testing::RandomMod r =
        i % 2 == 0 ? testing::random_mask(rng) : testing::random_expr(rng, Type::Float, 6, false);
    const BoolExpr body = r.body.type() == Type::Bool ? BoolExpr(r.body) : FloatExpr(r.body) < 0.5f;
    const Arch arch = i % 4 < 2 ? Arch::SM80 : Arch::SM90a;
    INFO("random mod #" << i << " on " << to_string(arch) << ":\n" << print(body));
    try {
      const CompiledKernel kernel =
          compile_to_ptx({TemplateKind::BlockClassify, arch, MaskMod("random", body), ScoreMod()});
      check_with_ptxas(kernel, arch);
    } catch (const Error& e) {
      REQUIRE(std::string(e.what()).find("division by a constant zero") != std::string::npos);
    }
  }
}
