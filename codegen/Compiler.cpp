// DSL -> PTX: parse the embedded template bitcode, define the hooks in it from
// the optimized mods, link libdevice lazily (only what the mods call),
// internalize all but the kernel, always-inline the hooks, O3 with the NVPTX
// target machine, keep ptxas's known miscompiles from triggering, emit PTX.
#include <chrono>
#include <mutex>

#include <llvm/Bitcode/BitcodeReader.h>
#include <llvm/IR/Constants.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Metadata.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Linker/Linker.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Support/CommandLine.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/Transforms/IPO/Internalize.h>

#include "flexjit/codegen/Build.h"
#include "flexjit/codegen/Embedded.h"
#include "flexjit/codegen/Lower.h"
#include "flexjit/codegen/Pipeline.h"
#include "flexjit/codegen/PtxasWorkarounds.h"
#include "flexjit/compiler/Passes.h"
#include "flexjit/support/Error.h"
#include "flexjit/support/Hash.h"
#include "flexjit/support/Timing.h"

namespace flexjit {

namespace {

constexpr const char* kTriple = "nvptx64-nvidia-cuda";

void initialize_nvptx() {
  static std::once_flag once;
  std::call_once(once, [] {
    LLVMInitializeNVPTXTargetInfo();
    LLVMInitializeNVPTXTarget();
    LLVMInitializeNVPTXTargetMC();
    LLVMInitializeNVPTXAsmPrinter();
    // No CodeGenPrepare: it re-parses every inline asm's constraint string (the wgmma
    // wrappers carry up to 256) and was a third of llc's time on the attention kernels, and
    // what it does (address sinking, branch shaping) ptxas redoes: the same kernel times on
    // the H200 (bench/NOTES_fwd_kernel.md). A process-wide LLVM option, of the library's own
    // LLVM (linked in statically).
    auto& options = llvm::cl::getRegisteredOptions();
    auto it = options.find("disable-cgp");
    FLEXJIT_ASSERT(it != options.end(), "LLVM has no -disable-cgp option");
    static_cast<llvm::cl::opt<bool>*>(it->second)->setValue(true);
  });
}

// The oldest PTX ISA each architecture needs, so the PTX loads on the oldest
// driver that can run it.
const char* ptx_features(Arch arch) {
  switch (arch) {
  case Arch::SM80:
    return "+ptx70";
  case Arch::SM90a:
    return "+ptx81"; // 8.1: red.global.add.v2.f32 (the sm_90a backward)
  }
  FLEXJIT_ASSERT(false, "unknown arch {}", static_cast<int>(arch));
}

std::unique_ptr<llvm::TargetMachine> make_target_machine(Arch arch) {
  initialize_nvptx();
  std::string error;
  const llvm::Target* target = llvm::TargetRegistry::lookupTarget(kTriple, error);
  FLEXJIT_ASSERT(target, "NVPTX target missing from this LLVM: {}", error);
  std::unique_ptr<llvm::TargetMachine> tm(target->createTargetMachine(
      kTriple, std::string(to_string(arch)), ptx_features(arch), llvm::TargetOptions(),
      std::nullopt, std::nullopt, llvm::CodeGenOptLevel::Default));
  FLEXJIT_ASSERT(tm, "cannot create the NVPTX target machine for {}", to_string(arch));
  return tm;
}

std::unique_ptr<llvm::Module> parse_embedded(std::string_view symbol, llvm::LLVMContext& ctx,
                                             bool lazy) {
  std::string_view bytes = embedded_bitcode(symbol);
  FLEXJIT_ASSERT(!bytes.empty(), "no embedded bitcode '{}' in this build", symbol);
  llvm::MemoryBufferRef buffer(llvm::StringRef(bytes.data(), bytes.size()), symbol);
  auto parsed =
      lazy ? llvm::getLazyBitcodeModule(buffer, ctx) : llvm::parseBitcodeFile(buffer, ctx);
  if (!parsed)
    FLEXJIT_ASSERT(false, "embedded bitcode '{}' does not parse: {}", symbol,
                   llvm::toString(parsed.takeError()));
  return std::move(*parsed);
}

bool calls_libdevice(const llvm::Module& m) {
  for (const llvm::Function& f : m)
    if (f.isDeclaration() && f.getName().starts_with("__nv_"))
      return true;
  return false;
}

// libdevice's functions, lazily: the linker materializes only those the module
// calls (and what they call).
void link_libdevice(llvm::Module& m) {
  if (!calls_libdevice(m))
    return;
  std::unique_ptr<llvm::Module> libdevice = parse_embedded("flexjit_bc_libdevice", m.getContext(),
                                                           /*lazy=*/true);
  libdevice->setTargetTriple(m.getTargetTriple());
  libdevice->setDataLayout(m.getDataLayout());
  const bool failed =
      llvm::Linker::linkModules(m, std::move(libdevice), llvm::Linker::Flags::LinkOnlyNeeded);
  FLEXJIT_ASSERT(!failed, "linking libdevice failed");
}

// One CPU and PTX version for every function, so the per-function subtargets
// agree with the .version/.target header the target machine prints.
void set_subtarget(llvm::Module& m, const llvm::TargetMachine& tm) {
  for (llvm::Function& f : m) {
    if (f.isDeclaration())
      continue;
    f.addFnAttr("target-cpu", tm.getTargetCPU());
    f.addFnAttr("target-features", tm.getTargetFeatureString());
  }
}

std::string emit_ptx(llvm::Module& m, llvm::TargetMachine& tm) {
  llvm::SmallString<0> ptx;
  llvm::raw_svector_ostream os(ptx);
  llvm::legacy::PassManager pm;
  const bool unsupported =
      tm.addPassesToEmitFile(pm, os, nullptr, llvm::CodeGenFileType::AssemblyFile,
                             /*DisableVerify=*/true); // compile_variant verified the module
  FLEXJIT_ASSERT(!unsupported, "the NVPTX target cannot emit assembly");
  pm.run(m);
  return std::string(ptx.str());
}

// Rewrites the kernel's minimum CTAs per SM (the "minctasm" launch bound clang wrote
// into !nvvm.annotations), or adds it.
void set_min_ctas_per_sm(llvm::Module& m, llvm::Function& kernel, int ctas) {
  llvm::NamedMDNode* annotations = m.getOrInsertNamedMetadata("nvvm.annotations");
  llvm::LLVMContext& ctx = m.getContext();
  llvm::Metadata* value = llvm::ConstantAsMetadata::get(
      llvm::ConstantInt::get(llvm::Type::getInt32Ty(ctx), static_cast<uint64_t>(ctas)));
  for (llvm::MDNode* node : annotations->operands()) {
    if (node->getNumOperands() != 3)
      continue;
    auto* fn = llvm::mdconst::dyn_extract_or_null<llvm::Function>(node->getOperand(0));
    auto* name = llvm::dyn_cast_or_null<llvm::MDString>(node->getOperand(1));
    if (fn == &kernel && name && name->getString() == "minctasm") {
      node->replaceOperandWith(2, value);
      return;
    }
  }
  annotations->addOperand(llvm::MDNode::get(
      ctx, {llvm::ValueAsMetadata::get(&kernel), llvm::MDString::get(ctx, "minctasm"), value}));
}

// Marks the kernel's FlexjitTensorMaps parameter grid_constant (!nvvm.annotations, what
// CUDA's __grid_constant__ becomes; clang 19 has no spelling for it): the template takes
// the maps' address for TMA, which must be the parameter's own param-space address, not a
// local copy.
int mark_tensor_maps_grid_constant(llvm::Module& m, llvm::Function& kernel) {
  llvm::LLVMContext& ctx = m.getContext();
  int marked = 0;
  for (llvm::Argument& arg : kernel.args()) {
    auto* type = llvm::dyn_cast_or_null<llvm::StructType>(arg.getParamByValType());
    if (!type || !type->hasName() || type->getName() != "struct.FlexjitTensorMaps")
      continue;
    llvm::Metadata* index = llvm::ConstantAsMetadata::get(
        llvm::ConstantInt::get(llvm::Type::getInt32Ty(ctx), arg.getArgNo() + 1)); // 1-based
    m.getOrInsertNamedMetadata("nvvm.annotations")
        ->addOperand(llvm::MDNode::get(ctx, {llvm::ValueAsMetadata::get(&kernel),
                                             llvm::MDString::get(ctx, "grid_constant"),
                                             llvm::MDNode::get(ctx, {index})}));
    ++marked;
  }
  return marked;
}

// The variant's node limit (codegen/Codegen.h), before any LLVM work.
void check_mod_size(const KernelVariant& v, const PreparedMods& mods) {
  if (mods.nodes <= v.max_mod_nodes)
    return;
  fail("mask_mod '{}' and score_mod '{}' have {} nodes after optimization ({} and {}); a {} "
       "kernel takes at most {}, as it inlines the mods per element it evaluates (larger mods "
       "compile for minutes and spill registers): simplify them or precompute part of them "
       "into a buffer",
       mods.mask.name(), mods.score.name(), mods.nodes, mods.mask_nodes, mods.score_nodes,
       to_string(v.kind), v.max_mod_nodes);
}

} // namespace

CompiledKernel compile_to_ptx(const KernelSpec& spec) {
  const KernelVariant& variant = find_variant(spec);
  return compile_variant(variant, *prepare_mods(spec.mask, spec.score), spec.min_ctas_per_sm);
}

CompiledKernel compile_variant(const KernelVariant& variant, const PreparedMods& mods,
                               int min_ctas_per_sm) {
  const Clock::time_point start = Clock::now();
  CompiledKernel out;
  out.entry = variant.main.entry;

  // Lower: optimized mods -> hook definitions inside the template's module.
  Clock::time_point phase = Clock::now();
  check_mod_size(variant, mods);
  const Expr& mask = mods.mask_body;
  const Expr& score = mods.score_body;
  out.signature = mods.signature;
  out.key = hash_text(kernel_key_text(variant, mods, min_ctas_per_sm)).hex();
  llvm::LLVMContext ctx;
  std::unique_ptr<llvm::Module> m = parse_embedded(variant.bitcode_symbol(), ctx, /*lazy=*/false);
  for (auto [kind, name, body] : {std::tuple{HookKind::Mask, kMaskHookName, mask},
                                  std::tuple{HookKind::Score, kScoreHookName, score}}) {
    llvm::Function* hook = lower_hook(*m, kind, name, body, out.signature, MathTarget::NVPTX);
    hook->addFnAttr(llvm::Attribute::AlwaysInline);
  }
  // Backward templates also call d(score_mod)/d(score); it reads a subset of what the
  // score_mod reads, so the signature stands.
  if (m->getFunction(kScoreGradHookName)) {
    llvm::Function* hook = lower_hook(*m, HookKind::Score, kScoreGradHookName,
                                      score_derivative(score), out.signature, MathTarget::NVPTX);
    hook->addFnAttr(llvm::Attribute::AlwaysInline);
  }
  out.times.lower_ms = ms_since(phase);

  // Link: libdevice, then everything but the kernel becomes internal (and,
  // once inlined or unused, disappears).
  phase = Clock::now();
  std::unique_ptr<llvm::TargetMachine> tm = make_target_machine(variant.arch);
  m->setDataLayout(tm->createDataLayout());
  m->setTargetTriple(kTriple);
  link_libdevice(*m);
  llvm::Function* kernel = m->getFunction(out.entry);
  FLEXJIT_ASSERT(kernel, "template '{}' has no kernel '{}'", variant.stem, out.entry);
  if (min_ctas_per_sm > 0)
    set_min_ctas_per_sm(*m, *kernel, min_ctas_per_sm);
  FLEXJIT_ASSERT(mark_tensor_maps_grid_constant(*m, *kernel) == (variant.tensor_maps ? 1 : 0),
                 "kernel '{}' {} a FlexjitTensorMaps parameter", out.entry,
                 variant.tensor_maps ? "lacks" : "has an unexpected");
  // The entry and its companion kernels (the table's) stay.
  auto is_kernel = [&](llvm::StringRef name) {
    if (name == variant.main.entry)
      return true;
    for (int i = 0; i < variant.num_companions; ++i)
      if (name == variant.companions[i].shape.entry)
        return true;
    return false;
  };
  for (int i = 0; i < variant.num_companions; ++i)
    FLEXJIT_ASSERT(m->getFunction(variant.companions[i].shape.entry),
                   "template '{}' has no kernel '{}'", variant.stem,
                   variant.companions[i].shape.entry);
  llvm::internalizeModule(*m, [&](const llvm::GlobalValue& gv) { return is_kernel(gv.getName()); });
  // libdevice's __nvvm_reflect queries read this flag: no flush-to-zero.
  if (!m->getModuleFlag("nvvm-reflect-ftz"))
    m->addModuleFlag(llvm::Module::Override, "nvvm-reflect-ftz", uint32_t{0});
  set_subtarget(*m, *tm);
  std::string errors;
  llvm::raw_string_ostream error_os(errors);
  FLEXJIT_ASSERT(!llvm::verifyModule(*m, &error_os), "invalid module for '{}': {}", out.entry,
                 errors);
  out.times.link_ms = ms_since(phase);

  phase = Clock::now();
  if (variant.jit_pipeline) {
    // The light pipeline has no general inliner: everything the kernel calls (the
    // hooks, libdevice) is inlined by always-inline.
    for (llvm::Function& f : *m)
      if (!f.isDeclaration() && f.getName() != out.entry &&
          !f.hasFnAttribute(llvm::Attribute::NoInline))
        f.addFnAttr(llvm::Attribute::AlwaysInline);
    run_pipeline(*m, tm.get(), variant.jit_pipeline);
  } else {
    run_default_pipeline(*m, tm.get(), llvm::OptimizationLevel::O3);
  }
  // After every LLVM optimization, which could undo it (codegen/PtxasWorkarounds.h).
  work_around_ptxas_min_of_negated_param(*m);
  out.times.optimize_ms = ms_since(phase);

  phase = Clock::now();
  out.ptx = emit_ptx(*m, *tm);
  out.times.codegen_ms = ms_since(phase);
  out.times.total_ms = ms_since(start);
  return out;
}

} // namespace flexjit
