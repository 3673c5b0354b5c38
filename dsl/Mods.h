// Captured buffers, run-time params, and the mods themselves.
#pragma once

#include <concepts>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "flexjit/dsl/Operators.h"

namespace flexjit {

// A captured tensor a mod can index: doc[q], table(i, j). Rank 1 to 4. An index
// outside [0, size) of its dimension reads 0 (false for bool buffers): loads are
// bounds-checked identically in the interpreter, the host JIT and the GPU.
class Buffer {
public:
  Buffer(std::string name, DType dtype, int rank);  // declared, bound later
  Buffer(std::string name, const TensorView& data); // captures data (host or device)

  // Binds new data of the same dtype and rank; mods using it do not recompile.
  void bind(const TensorView& data);

  // An untyped load; throws Error unless exactly rank() indices are given.
  Expr load(std::vector<IntExpr> indices) const;

  const std::shared_ptr<BufferDecl>& decl() const { return decl_; }
  const std::string& name() const { return decl_->name; }
  DType dtype() const { return decl_->dtype; }
  int rank() const { return decl_->rank; }

private:
  std::shared_ptr<BufferDecl> decl_;
};

// A buffer whose loads are typed: IntBuffer (i32), FloatBuffer (f32, f16,
// bf16; loads convert to float), BoolBuffer.
template <class E> class TypedBuffer : public Buffer {
public:
  using Buffer::Buffer;
  explicit TypedBuffer(Buffer b) : Buffer(std::move(b)) {}

  E operator[](const IntExpr& i) const { return E(load({i})); }
  template <class... I>
  requires(sizeof...(I) >= 1 && (IntLike<I> && ...)) E operator()(const I&... idx) const {
    return E(load({IntExpr(idx)...}));
  }
};
using IntBuffer = TypedBuffer<IntExpr>;
using FloatBuffer = TypedBuffer<FloatExpr>;
using BoolBuffer = TypedBuffer<BoolExpr>;

// Capture data; the view's dtype must be the one named (else Error).
IntBuffer buffer_i32(std::string name, const TensorView& data);
FloatBuffer buffer_f32(std::string name, const TensorView& data);
FloatBuffer buffer_f16(std::string name, const TensorView& data);
FloatBuffer buffer_bf16(std::string name, const TensorView& data);
BoolBuffer buffer_bool(std::string name, const TensorView& data);

// Run-time scalars; bound at call time (or by their default), never recompiled.
IntExpr param_i32(std::string name, std::optional<int32_t> default_value = std::nullopt);
FloatExpr param_f32(std::string name, std::optional<float> default_value = std::nullopt);

// A mask_mod: (b, h, q_idx, kv_idx) -> bool. True means the pair may attend.
class MaskMod {
public:
  MaskMod() = default; // noop: everything attends
  MaskMod(std::string name, BoolExpr body);
  const std::string& name() const { return name_; }
  const BoolExpr& body() const { return body_; }
  bool is_noop() const;

private:
  std::string name_ = "noop";
  BoolExpr body_ = BoolExpr(true);
};

// A score_mod: (score, b, h, q_idx, kv_idx) -> float, applied before softmax.
class ScoreMod {
public:
  ScoreMod(); // identity
  ScoreMod(std::string name, FloatExpr body);
  const std::string& name() const { return name_; }
  const FloatExpr& body() const { return body_; }
  bool is_noop() const;

private:
  std::string name_ = "noop";
  FloatExpr body_;
};

template <class F>
concept MaskFn = std::same_as<std::invoke_result_t<F, Idx, Idx, Idx, Idx>, BoolExpr>;
template <class F>
concept ScoreFn = std::same_as<std::invoke_result_t<F, Score, Idx, Idx, Idx, Idx>, FloatExpr>;

// The mod's variables, for building bodies by hand.
IntExpr var_b();
IntExpr var_h();
IntExpr var_q();
IntExpr var_kv();
FloatExpr var_score();

// Builds a mask_mod from a C++ callable returning BoolExpr. A callable that
// returns anything else (a FloatExpr, say) does not compile.
template <MaskFn F> MaskMod mask_mod(std::string name, F&& fn) {
  return MaskMod(std::move(name), std::invoke(fn, var_b(), var_h(), var_q(), var_kv()));
}
template <MaskFn F> MaskMod mask_mod(F&& fn) {
  return mask_mod("mask_mod", std::forward<F>(fn));
}

// Builds a score_mod from a C++ callable returning FloatExpr. A callable that
// returns a BoolExpr does not compile.
template <ScoreFn F> ScoreMod score_mod(std::string name, F&& fn) {
  return ScoreMod(std::move(name),
                  std::invoke(fn, var_score(), var_b(), var_h(), var_q(), var_kv()));
}
template <ScoreFn F> ScoreMod score_mod(F&& fn) {
  return score_mod("score_mod", std::forward<F>(fn));
}

MaskMod and_masks(std::initializer_list<MaskMod> masks);
MaskMod or_masks(std::initializer_list<MaskMod> masks);
template <class... M>
requires(std::same_as<M, MaskMod>&&...) MaskMod and_masks(const M&... masks) {
  return and_masks({masks...});
}
template <class... M>
requires(std::same_as<M, MaskMod>&&...) MaskMod or_masks(const M&... masks) {
  return or_masks({masks...});
}
MaskMod noop_mask();
ScoreMod noop_score();

} // namespace flexjit
