// Which buffers and params a kernel's mods read, their ABI slots, and the
// values bound to them for one call.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "flexjit/dsl/Expr.h"

namespace flexjit {

// Call-time values: buffers and params by name. They override the data a
// Buffer captured and a param's default.
struct Bindings {
  std::map<std::string, TensorView> buffers;
  std::map<std::string, double> params;
};

inline constexpr int kMaxBuffers = 8;
inline constexpr int kMaxIntParams = 16;
inline constexpr int kMaxFloatParams = 16;

// The buffers and params of one or more mods, in slot order (sorted by name).
// Params are identified by name (two param_i32("w") handles are one param);
// buffers by name too, and two different buffers sharing a name is an Error.
struct ModSignature {
  std::vector<std::shared_ptr<const BufferDecl>> buffers;
  std::vector<std::shared_ptr<const ParamDecl>> int_params;
  std::vector<std::shared_ptr<const ParamDecl>> float_params;

  // Throws Error on a name clash or when more than kMax* are used.
  static ModSignature of(const std::vector<Expr>& roots);

  int buffer_slot(const BufferDecl& decl) const; // FLEXJIT_ASSERTs presence
  int param_slot(const ParamDecl& decl) const;   // index within its type's list
  // A canonical text of the slots (part of the kernel cache key).
  std::string to_string() const;
};

// Values for every slot of a signature.
struct ResolvedArgs {
  std::vector<TensorView> buffers;
  std::vector<int32_t> int_params;
  std::vector<float> float_params;
};

// Resolves each slot from `bindings`, else the buffer's captured data or the
// param's default. Throws Error for a param never bound, a buffer with no
// data, or a bound view whose dtype or rank does not match the declaration.
ResolvedArgs resolve(const ModSignature& sig, const Bindings& bindings);

} // namespace flexjit
