// Expr -> LLVM IR with the interpreter's semantics (compiler/Interpreter.h):
// wrapping int arithmetic, torch floor division with x // 0 == 0 and no
// division that could trap, NaN-propagating min/max, saturating float -> int,
// bounds-checked loads that never touch memory out of range (and report a data-indexed
// load outside its buffer).
#include "flexjit/codegen/Lower.h"

#include <cstddef>
#include <limits>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/InlineAsm.h>
#include <llvm/IR/Intrinsics.h>

#include "flexjit/codegen/templates/flexjit_abi.h"
#include "flexjit/compiler/Visitor.h"
#include "flexjit/support/Error.h"

namespace flexjit {

namespace {

using llvm::Value;

constexpr uint64_t kIntParamsOffset = offsetof(FlexjitModArgs, int_params);
constexpr uint64_t kFloatParamsOffset = offsetof(FlexjitModArgs, float_params);
constexpr uint64_t kDeviceErrorOffset = offsetof(FlexjitModArgs, device_error);
constexpr uint64_t kBufferSize = sizeof(FlexjitBufferArg);
constexpr uint64_t kSizesOffset = offsetof(FlexjitBufferArg, sizes);
constexpr uint64_t kStridesOffset = offsetof(FlexjitBufferArg, strides);
static_assert(offsetof(FlexjitModArgs, buffers) == 0 && offsetof(FlexjitBufferArg, data) == 0);
static_assert(FLEXJIT_MAX_BUFFERS == kMaxBuffers && FLEXJIT_MAX_INT_PARAMS == kMaxIntParams &&
                  FLEXJIT_MAX_FLOAT_PARAMS == kMaxFloatParams && FLEXJIT_MAX_RANK == kMaxRank,
              "the ABI header and compiler/Signature.h disagree on slot counts");

class Lowerer {
public:
  Lowerer(llvm::Function* fn, HookKind kind, const ModSignature& sig, MathTarget target)
      : module_(*fn->getParent()), ctx_(fn->getContext()), b_(ctx_), sig_(sig), target_(target) {
    b_.SetInsertPoint(llvm::BasicBlock::Create(ctx_, "entry", fn));
    auto arg = fn->arg_begin();
    if (kind == HookKind::Score)
      vars_[static_cast<int>(Var::Score)] = &*arg++;
    for (Var v : {Var::B, Var::H, Var::Q, Var::KV})
      vars_[static_cast<int>(v)] = &*arg++;
    args_ = &*arg;
  }

  void run(const Expr& body) {
    checked_ = data_indexed_loads(body);
    for (const Expr& e : topo_order(body))
      values_[e.get()] = lower(e);
    b_.CreateRet(values_.at(body.get()));
  }

private:
  Value* operand(const Expr& e, size_t i) const { return values_.at(e->operands[i].get()); }

  llvm::Type* i1() { return b_.getInt1Ty(); }
  llvm::Type* i32() { return b_.getInt32Ty(); }
  llvm::Type* f32() { return b_.getFloatTy(); }

  Value* lower(const Expr& e) {
    const bool is_float = e.type() == Type::Float;
    switch (e.kind()) {
    case NodeKind::IntConst:
      return b_.getInt32(static_cast<uint32_t>(e->ival));
    case NodeKind::FloatConst:
      return llvm::ConstantFP::get(f32(), e->fval);
    case NodeKind::BoolConst:
      return b_.getInt1(e->ival != 0);
    case NodeKind::Var:
      FLEXJIT_ASSERT(vars_[e->ival], "variable {} is not an argument of this hook",
                     var_name(static_cast<Var>(e->ival)));
      return vars_[e->ival];
    case NodeKind::Param:
      return lower_param(*e->param);
    case NodeKind::Load:
      return lower_load(e);
    case NodeKind::Add:
      return is_float ? b_.CreateFAdd(operand(e, 0), operand(e, 1))
                      : b_.CreateAdd(operand(e, 0), operand(e, 1));
    case NodeKind::Sub:
      return is_float ? b_.CreateFSub(operand(e, 0), operand(e, 1))
                      : b_.CreateSub(operand(e, 0), operand(e, 1));
    case NodeKind::Mul:
      return is_float ? b_.CreateFMul(operand(e, 0), operand(e, 1))
                      : b_.CreateMul(operand(e, 0), operand(e, 1));
    case NodeKind::Div:
      return b_.CreateFDiv(operand(e, 0), operand(e, 1));
    case NodeKind::FloorDiv:
    case NodeKind::Mod:
      return lower_floor_div_mod(e.kind(), operand(e, 0), operand(e, 1));
    case NodeKind::Min:
      return b_.CreateBinaryIntrinsic(is_float ? llvm::Intrinsic::minimum : llvm::Intrinsic::smin,
                                      operand(e, 0), operand(e, 1));
    case NodeKind::Max:
      return b_.CreateBinaryIntrinsic(is_float ? llvm::Intrinsic::maximum : llvm::Intrinsic::smax,
                                      operand(e, 0), operand(e, 1));
    case NodeKind::Lt:
    case NodeKind::Le:
    case NodeKind::Eq:
    case NodeKind::Ne:
      return lower_compare(e.kind(), e->operands[0].type(), operand(e, 0), operand(e, 1));
    case NodeKind::And:
    case NodeKind::BitAnd:
      return b_.CreateAnd(operand(e, 0), operand(e, 1));
    case NodeKind::Or:
    case NodeKind::BitOr:
      return b_.CreateOr(operand(e, 0), operand(e, 1));
    case NodeKind::Not:
      return b_.CreateNot(operand(e, 0));
    case NodeKind::Neg:
      return is_float ? b_.CreateFNeg(operand(e, 0)) : b_.CreateSub(b_.getInt32(0), operand(e, 0));
    case NodeKind::Abs:
      if (is_float)
        return b_.CreateUnaryIntrinsic(llvm::Intrinsic::fabs, operand(e, 0));
      // abs(INT_MIN) wraps to INT_MIN: the intrinsic's "INT_MIN is poison" flag is false.
      return b_.CreateBinaryIntrinsic(llvm::Intrinsic::abs, operand(e, 0), b_.getFalse());
    case NodeKind::Exp:
      return math("expf", "__nv_expf", operand(e, 0));
    case NodeKind::Exp2:
      return math("exp2f", "__nv_exp2f", operand(e, 0));
    case NodeKind::Log:
      return math("logf", "__nv_logf", operand(e, 0));
    case NodeKind::Log2:
      return math("log2f", "__nv_log2f", operand(e, 0));
    case NodeKind::Sin:
      return math("sinf", "__nv_sinf", operand(e, 0));
    case NodeKind::Cos:
      return math("cosf", "__nv_cosf", operand(e, 0));
    case NodeKind::Sqrt:
      return sqrt(operand(e, 0));
    case NodeKind::Rsqrt:
      // 1 / sqrt(x), both correctly rounded (sqrt.rn, div.rn on the GPU).
      return b_.CreateFDiv(llvm::ConstantFP::get(f32(), 1.0), sqrt(operand(e, 0)));
    case NodeKind::Tanh:
      return math("tanhf", "__nv_tanhf", operand(e, 0));
    case NodeKind::TanhApprox:
      return tanh_approx(operand(e, 0));
    case NodeKind::Select:
      return b_.CreateSelect(operand(e, 0), operand(e, 1), operand(e, 2));
    case NodeKind::Cast:
      return lower_cast(e->operands[0].type(), e.type(), operand(e, 0));
    }
    FLEXJIT_ASSERT(false, "unknown node kind {}", static_cast<int>(e.kind()));
  }

  // A byte offset from the args pointer.
  Value* args_at(uint64_t offset) {
    return b_.CreateConstInBoundsGEP1_64(b_.getInt8Ty(), args_, offset);
  }

  Value* lower_param(const ParamDecl& decl) {
    const uint64_t slot = static_cast<uint64_t>(sig_.param_slot(decl));
    if (decl.type == Type::Int)
      return b_.CreateAlignedLoad(i32(), args_at(kIntParamsOffset + 4 * slot), llvm::Align(4),
                                  decl.name);
    return b_.CreateAlignedLoad(f32(), args_at(kFloatParamsOffset + 4 * slot), llvm::Align(4),
                                decl.name);
  }

  // if (every index in [0, size)) value = data[sum(index * stride)]; else value = 0.
  // Branch-free, and memory out of range is never touched: on the GPU a predicated load
  // (predicated_load), on the host a load from an address selected between the element
  // and a zero constant. Straight-line code keeps the kernel one basic block per tile
  // step, which is what the JIT's instruction selection is fastest on.
  Value* lower_load(const Expr& e) {
    const BufferDecl& decl = *e->buffer;
    const uint64_t base = kBufferSize * static_cast<uint64_t>(sig_.buffer_slot(decl));
    llvm::Type* i64 = b_.getInt64Ty();
    Value* in_range = b_.getTrue();
    Value* offset = b_.getInt64(0);
    for (int d = 0; d < decl.rank; ++d) {
      Value* size = b_.CreateAlignedLoad(i64, args_at(base + kSizesOffset + 8 * d), llvm::Align(8));
      Value* stride =
          b_.CreateAlignedLoad(i64, args_at(base + kStridesOffset + 8 * d), llvm::Align(8));
      Value* index = b_.CreateSExt(operand(e, d), i64);
      // A negative index is a huge unsigned one: one compare checks both ends.
      in_range = b_.CreateAnd(in_range, b_.CreateICmpULT(index, size));
      offset = b_.CreateAdd(offset, b_.CreateMul(index, stride));
    }
    const bool checked = checked_.count(e.get()) != 0;
    Value* data = b_.CreateAlignedLoad(b_.getPtrTy(), args_at(base), llvm::Align(8));
    Value* bytes = b_.CreateMul(offset, b_.getInt64(static_cast<uint64_t>(dtype_size(decl.dtype))));
    if (target_ == MathTarget::NVPTX) // buffers are device memory: global (one cvta per base)
      return predicated_load(
          decl.dtype,
          b_.CreateGEP(b_.getInt8Ty(), b_.CreateAddrSpaceCast(data, b_.getPtrTy(1)), bytes),
          in_range, checked ? error_word() : nullptr);
    if (checked)
      report_outside(in_range);
    Value* addr = b_.CreateGEP(b_.getInt8Ty(), data, bytes);
    return load_element(decl.dtype, b_.CreateSelect(in_range, addr, zero_element(), decl.name));
  }

  // A data-indexed load (compiler/Visitor.h data_indexed_loads) outside its buffer ORs
  // FLEXJIT_DEVICE_ERROR_LOAD into *args->device_error when that is not null. On the GPU the
  // report is part of the load's own asm (predicated_load); here, on the host, a branch around
  // an atomic or.
  Value* error_word() {
    return b_.CreateAlignedLoad(b_.getPtrTy(), args_at(kDeviceErrorOffset), llvm::Align(8));
  }
  void report_outside(Value* in_range) {
    Value* word = error_word();
    llvm::Function* fn = b_.GetInsertBlock()->getParent();
    auto* report = llvm::BasicBlock::Create(ctx_, "report_outside", fn);
    auto* next = llvm::BasicBlock::Create(ctx_, "after_report", fn);
    b_.CreateCondBr(b_.CreateAnd(b_.CreateNot(in_range), b_.CreateIsNotNull(word)), report, next);
    b_.SetInsertPoint(report);
    b_.CreateAtomicRMW(llvm::AtomicRMWInst::Or, word, b_.getInt32(FLEXJIT_DEVICE_ERROR_LOAD),
                       llvm::MaybeAlign(4), llvm::AtomicOrdering::Monotonic);
    b_.CreateBr(next);
    b_.SetInsertPoint(next);
  }

  // On the GPU: `@in_range ld.global` into a register zeroed first. A tile's loads keep
  // their addresses as a base plus constants (ptxas folds those into the instructions),
  // and loads of equal addresses are one (the call only reads memory). A select between
  // each element's address and a zero constant made every load's address a 64-bit value
  // of its own: the warp-specialized forward spilled 28-68 bytes with document masks.
  //
  // With `word` (a data-indexed load's report, report_outside), the same asm also runs
  // `@outside red.or [word]` where outside = !in_range && word != 0. It stays one "read-only"
  // call on purpose: a separate side-effecting statement per load could not be merged or
  // hoisted and kept many values live across a tile's unrolled hooks (jagged_causal in the
  // sm_90a forward at two CTAs per SM: 872 bytes of spills where it spills 148 without
  // reports; the decode kernel 96-384). This form still keeps the word's address live: 40-244
  // bytes in the decode and warp-specialized kernels for such masks (test_codegen_ptx.cpp's
  // sweeps bound them at 256). Calling it read-only lets LLVM
  // merge equal loads (one report instead of two), move them, or drop an unused one (no
  // report where the value cannot matter); nothing in a kernel reads the word, so no
  // reordering can change a result.
  Value* predicated_load(DType dtype, Value* addr, Value* in_range, Value* word = nullptr) {
    const char* op = dtype == DType::I32 || dtype == DType::F32 ? "u32"
                     : dtype == DType::Bool                     ? "u8"
                                                                : "u16";
    llvm::CallInst* bits = nullptr;
    if (!word) {
      auto* type = llvm::FunctionType::get(i32(), {b_.getPtrTy(1), b_.getInt1Ty()}, false);
      auto* asm_fn = llvm::InlineAsm::get(
          type, fmt::format("mov.b32 $0, 0;\n\t@$2 ld.global.{} $0, [$1];", op), "=r,l,b",
          /*hasSideEffects=*/false);
      bits = b_.CreateCall(type, asm_fn, {addr, in_range});
    } else {
      auto* type =
          llvm::FunctionType::get(i32(), {b_.getPtrTy(1), b_.getInt1Ty(), b_.getPtrTy()}, false);
      auto* asm_fn = llvm::InlineAsm::get(
          type,
          fmt::format("{{\n\t.reg .pred %outside;\n\tmov.b32 $0, 0;\n\t@$2 ld.global.{} $0, "
                      "[$1];\n\tsetp.ne.and.u64 %outside, $3, 0, !$2;\n\t@%outside red.or.b32 "
                      "[$3], {};\n\t}}",
                      op, FLEXJIT_DEVICE_ERROR_LOAD),
          "=r,l,b,l", /*hasSideEffects=*/false);
      bits = b_.CreateCall(type, asm_fn, {addr, in_range, word});
    }
    bits->setOnlyReadsMemory();
    bits->setDoesNotThrow();
    switch (dtype) {
    case DType::I32:
      return bits;
    case DType::F32:
      return b_.CreateBitCast(bits, f32());
    case DType::F16:
      return b_.CreateFPExt(b_.CreateBitCast(b_.CreateTrunc(bits, b_.getInt16Ty()), b_.getHalfTy()),
                            f32());
    case DType::BF16: // the high half of a binary32: shift the bits, never round
      return b_.CreateBitCast(b_.CreateShl(bits, 16), f32());
    case DType::Bool:
      return b_.CreateICmpNE(bits, b_.getInt32(0));
    }
    FLEXJIT_ASSERT(false, "unknown dtype {}", static_cast<int>(dtype));
  }

  // An 8-byte zero constant every out-of-range host load reads.
  Value* zero_element() {
    constexpr const char* kName = "flexjit_zero_element";
    llvm::GlobalVariable* zero = module_.getGlobalVariable(kName, /*AllowInternal=*/true);
    if (!zero) {
      auto* type = llvm::ArrayType::get(b_.getInt8Ty(), 8);
      zero = new llvm::GlobalVariable(module_, type, /*isConstant=*/true,
                                      llvm::GlobalValue::PrivateLinkage,
                                      llvm::Constant::getNullValue(type), kName);
      zero->setAlignment(llvm::Align(8));
      zero->setUnnamedAddr(llvm::GlobalValue::UnnamedAddr::Global);
    }
    return zero;
  }

  Value* load_element(DType dtype, Value* addr) {
    switch (dtype) {
    case DType::I32:
      return b_.CreateAlignedLoad(i32(), addr, llvm::Align(4));
    case DType::F32:
      return b_.CreateAlignedLoad(f32(), addr, llvm::Align(4));
    case DType::F16:
      return b_.CreateFPExt(b_.CreateAlignedLoad(b_.getHalfTy(), addr, llvm::Align(2)), f32());
    case DType::BF16: {
      // bf16 is the high half of a binary32: widen the bits, never round.
      Value* bits = b_.CreateAlignedLoad(b_.getInt16Ty(), addr, llvm::Align(2));
      return b_.CreateBitCast(b_.CreateShl(b_.CreateZExt(bits, i32()), 16), f32());
    }
    case DType::Bool:
      return b_.CreateICmpNE(b_.CreateLoad(b_.getInt8Ty(), addr), b_.getInt8(0));
    }
    FLEXJIT_ASSERT(false, "unknown dtype {}", static_cast<int>(dtype));
  }

  // torch's // and %: the quotient rounds toward -inf and the remainder takes
  // the divisor's sign. The divisor is made safe before dividing (1 for a zero
  // divisor and for INT_MIN / -1), so sdiv/srem never trap and never yield
  // poison; INT_MIN // -1 == INT_MIN // 1 == INT_MIN and INT_MIN % 1 == 0 as
  // required, and x // 0 is selected to 0 (x % 1 == 0 already).
  Value* lower_floor_div_mod(NodeKind kind, Value* a, Value* d) {
    Value* zero = b_.getInt32(0);
    Value* by_zero = b_.CreateICmpEQ(d, zero);
    Value* overflow =
        b_.CreateAnd(b_.CreateICmpEQ(a, b_.getInt32(static_cast<uint32_t>(INT32_MIN))),
                     b_.CreateICmpEQ(d, b_.getInt32(static_cast<uint32_t>(-1))));
    Value* safe = b_.CreateSelect(b_.CreateOr(by_zero, overflow), b_.getInt32(1), d);
    Value* q = b_.CreateSDiv(a, safe);
    Value* r = b_.CreateSRem(a, safe);
    // The truncated remainder is non-zero and of the other sign than the divisor.
    Value* adjust =
        b_.CreateAnd(b_.CreateICmpNE(r, zero), b_.CreateICmpSLT(b_.CreateXor(r, d), zero));
    if (kind == NodeKind::Mod)
      return b_.CreateAdd(r, b_.CreateSelect(adjust, d, zero));
    Value* floor_q = b_.CreateSub(q, b_.CreateZExt(adjust, i32()));
    return b_.CreateSelect(by_zero, zero, floor_q);
  }

  Value* lower_compare(NodeKind kind, Type type, Value* a, Value* c) {
    using P = llvm::CmpInst::Predicate;
    const bool fp = type == Type::Float;
    FLEXJIT_ASSERT(kind == NodeKind::Lt || kind == NodeKind::Le || kind == NodeKind::Eq ||
                       kind == NodeKind::Ne,
                   "{} is not a comparison", to_string(kind));
    // Ordered compares are false for NaN; != is true for NaN (like C++).
    const P pred = kind == NodeKind::Lt   ? (fp ? P::FCMP_OLT : P::ICMP_SLT)
                   : kind == NodeKind::Le ? (fp ? P::FCMP_OLE : P::ICMP_SLE)
                   : kind == NodeKind::Eq ? (fp ? P::FCMP_OEQ : P::ICMP_EQ)
                                          : (fp ? P::FCMP_UNE : P::ICMP_NE);
    return fp ? b_.CreateFCmp(pred, a, c) : b_.CreateICmp(pred, a, c);
  }

  Value* lower_cast(Type from, Type to, Value* v) {
    if (from == to)
      return v;
    switch (to) {
    case Type::Bool:
      return from == Type::Float ? b_.CreateFCmpUNE(v, llvm::ConstantFP::get(f32(), 0.0))
                                 : b_.CreateICmpNE(v, b_.getInt32(0));
    case Type::Int:
      if (from == Type::Bool)
        return b_.CreateZExt(v, i32());
      // Truncates toward zero, saturates, NaN -> 0.
      return b_.CreateIntrinsic(llvm::Intrinsic::fptosi_sat, {i32(), f32()}, {v});
    case Type::Float:
      return from == Type::Bool ? b_.CreateUIToFP(v, f32()) : b_.CreateSIToFP(v, f32());
    }
    FLEXJIT_ASSERT(false, "unknown type {}", static_cast<int>(to));
  }

  // A binary32 math function: the C library's on the host, libdevice's on the GPU.
  Value* math(const char* host, const char* libdevice, Value* x) {
    return call_float_fn(target_ == MathTarget::Host ? host : libdevice, x);
  }

  // llvm.sqrt is correctly rounded on both targets (sqrt.rn.f32 on NVPTX).
  Value* sqrt(Value* x) { return b_.CreateUnaryIntrinsic(llvm::Intrinsic::sqrt, x); }

  Value* tanh_approx(Value* x) {
    if (target_ == MathTarget::Host)
      return call_float_fn("tanhf", x);
    auto* type = llvm::FunctionType::get(f32(), {f32()}, false);
    auto* asm_fn = llvm::InlineAsm::get(type, "tanh.approx.f32 $0, $1;", "=f,f",
                                        /*hasSideEffects=*/false);
    return b_.CreateCall(type, asm_fn, {x});
  }

  // float fn(float), without side effects (so it can be hoisted, CSE'd or dropped).
  // On the host the call is nobuiltin: LLVM knows expf, tanhf & co. and would
  // constant-fold a constant operand (one it finds after the simplifier, e.g. in
  // tanhf(select(c, k1, k2))) with its own double-precision evaluation, which can
  // differ from the C library's binary32 result -- the interpreter's -- in the
  // last bit (tests/fuzz_corpus/host_tanhf_folded_by_llvm.fz).
  Value* call_float_fn(const char* name, Value* x) {
    auto callee = module_.getOrInsertFunction(name, llvm::FunctionType::get(f32(), {f32()}, false));
    if (auto* fn = llvm::dyn_cast<llvm::Function>(callee.getCallee())) {
      fn->setDoesNotThrow();
      fn->setWillReturn();
      fn->setDoesNotAccessMemory();
    }
    llvm::CallInst* call = b_.CreateCall(callee, {x});
    call->setDoesNotAccessMemory();
    if (target_ == MathTarget::Host)
      call->addFnAttr(llvm::Attribute::NoBuiltin);
    return call;
  }

  llvm::Module& module_;
  llvm::LLVMContext& ctx_;
  llvm::IRBuilder<> b_;
  const ModSignature& sig_;
  MathTarget target_;
  Value* vars_[5] = {};
  Value* args_ = nullptr;
  std::unordered_map<const Node*, Value*> values_;
  std::unordered_set<const Node*> checked_; // data-indexed loads (report_outside)
};

} // namespace

llvm::FunctionType* hook_type(llvm::LLVMContext& ctx, HookKind kind) {
  llvm::Type* i32 = llvm::Type::getInt32Ty(ctx);
  llvm::Type* ptr = llvm::PointerType::getUnqual(ctx);
  if (kind == HookKind::Mask)
    return llvm::FunctionType::get(llvm::Type::getInt1Ty(ctx), {i32, i32, i32, i32, ptr}, false);
  llvm::Type* f32 = llvm::Type::getFloatTy(ctx);
  return llvm::FunctionType::get(f32, {f32, i32, i32, i32, i32, ptr}, false);
}

llvm::Function* lower_hook(llvm::Module& module, HookKind kind, llvm::StringRef name,
                           const Expr& body, const ModSignature& sig, MathTarget target) {
  const Type want = kind == HookKind::Mask ? Type::Bool : Type::Float;
  FLEXJIT_ASSERT(body && body.type() == want, "hook '{}' needs a {} body", name.str(),
                 flexjit::to_string(want));
  llvm::FunctionType* type = hook_type(module.getContext(), kind);
  llvm::Function* fn = module.getFunction(name);
  if (!fn)
    fn = llvm::Function::Create(type, llvm::GlobalValue::ExternalLinkage, name, module);
  FLEXJIT_ASSERT(fn->getFunctionType() == type && fn->isDeclaration(),
                 "module already has a different or defined '{}'", name.str());
  if (kind == HookKind::Mask)
    fn->addRetAttr(llvm::Attribute::ZExt);
  for (llvm::Argument& arg : fn->args())
    arg.addAttr(llvm::Attribute::NoUndef);
  fn->setDoesNotThrow();
  fn->removeFnAttr(llvm::Attribute::NoInline);
  Lowerer(fn, kind, sig, target).run(body);
  return fn;
}

} // namespace flexjit
