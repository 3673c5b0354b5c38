#include "flexjit/compiler/Signature.h"

#include <algorithm>

#include "flexjit/compiler/Visitor.h"
#include "flexjit/support/Error.h"

namespace flexjit {

ModSignature ModSignature::of(const std::vector<Expr>& roots) {
  ModSignature sig;
  std::map<std::string, std::shared_ptr<const BufferDecl>> buffers;
  std::map<std::string, std::shared_ptr<const ParamDecl>> params;
  for (const Expr& e : topo_order(roots)) {
    if (e.kind() == NodeKind::Load) {
      auto [it, inserted] = buffers.emplace(e->buffer->name, e->buffer);
      if (!inserted && it->second != e->buffer)
        fail("two different buffers are named '{}' in one kernel; expected unique buffer names",
             e->buffer->name);
    } else if (e.kind() == NodeKind::Param) {
      auto [it, inserted] = params.emplace(e->param->name, e->param);
      if (!inserted && it->second->type != e->param->type)
        fail("param '{}' is used both as {} and as {}; expected one type per name", e->param->name,
             flexjit::to_string(it->second->type), flexjit::to_string(e->param->type));
    }
  }
  for (auto& [name, decl] : buffers)
    sig.buffers.push_back(decl);
  for (auto& [name, decl] : params)
    (decl->type == Type::Int ? sig.int_params : sig.float_params).push_back(decl);
  if (sig.buffers.size() > kMaxBuffers)
    fail("a kernel's mods read {} buffers; at most {} are supported", sig.buffers.size(),
         kMaxBuffers);
  if (sig.int_params.size() > kMaxIntParams)
    fail("a kernel's mods read {} int params; at most {} are supported", sig.int_params.size(),
         kMaxIntParams);
  if (sig.float_params.size() > kMaxFloatParams)
    fail("a kernel's mods read {} float params; at most {} are supported", sig.float_params.size(),
         kMaxFloatParams);
  return sig;
}

int ModSignature::buffer_slot(const BufferDecl& decl) const {
  for (size_t i = 0; i < buffers.size(); ++i)
    if (buffers[i]->name == decl.name)
      return static_cast<int>(i);
  FLEXJIT_ASSERT(false, "buffer '{}' is not in the signature", decl.name);
}

int ModSignature::param_slot(const ParamDecl& decl) const {
  const auto& list = decl.type == Type::Int ? int_params : float_params;
  for (size_t i = 0; i < list.size(); ++i)
    if (list[i]->name == decl.name)
      return static_cast<int>(i);
  FLEXJIT_ASSERT(false, "param '{}' is not in the signature", decl.name);
}

std::string ModSignature::to_string() const {
  std::string s = "buffers(";
  for (const auto& b : buffers)
    s += fmt::format("{}:{}:{};", b->name, flexjit::to_string(b->dtype), b->rank);
  s += ") int_params(";
  for (const auto& p : int_params)
    s += p->name + ";";
  s += ") float_params(";
  for (const auto& p : float_params)
    s += p->name + ";";
  return s + ")";
}

ResolvedArgs resolve(const ModSignature& sig, const Bindings& bindings) {
  ResolvedArgs args;
  for (const auto& decl : sig.buffers) {
    auto it = bindings.buffers.find(decl->name);
    if (it == bindings.buffers.end() && !decl->binding)
      fail("buffer '{}' has no data; capture data when declaring it or bind it at call time",
           decl->name);
    const TensorView& view = it != bindings.buffers.end() ? it->second : *decl->binding;
    if (view.dtype != decl->dtype)
      fail("buffer '{}' is declared {} but is bound to {} data; expected {} data", decl->name,
           flexjit::to_string(decl->dtype), flexjit::to_string(view.dtype),
           flexjit::to_string(decl->dtype));
    if (view.rank != decl->rank)
      fail("buffer '{}' has rank {} but is bound to a rank-{} tensor", decl->name, decl->rank,
           view.rank);
    if (view.data == nullptr && view.numel() > 0)
      fail("buffer '{}' is bound to a null data pointer", decl->name);
    args.buffers.push_back(view);
  }
  auto value_of = [&](const ParamDecl& decl) {
    auto it = bindings.params.find(decl.name);
    if (it != bindings.params.end())
      return it->second;
    if (decl.default_value)
      return *decl.default_value;
    fail("param '{}' was never bound; bind it at call time (Bindings::params) or give it a "
         "default",
         decl.name);
  };
  for (const auto& decl : sig.int_params) {
    double v = value_of(*decl);
    if (v != static_cast<double>(static_cast<int32_t>(v)))
      fail("int param '{}' is bound to {}; expected an integer in int32 range", decl->name, v);
    args.int_params.push_back(static_cast<int32_t>(v));
  }
  for (const auto& decl : sig.float_params)
    args.float_params.push_back(static_cast<float>(value_of(*decl)));
  return args;
}

} // namespace flexjit
