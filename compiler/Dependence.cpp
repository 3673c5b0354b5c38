#include <algorithm>
#include <map>

#include "flexjit/compiler/Passes.h"
#include "flexjit/compiler/Visitor.h"

namespace flexjit {

Dependence analyze_dependence(const Expr& e) {
  Dependence dep;
  if (!e)
    return dep;
  // Maps give the sorted, unique-by-name lists the signature also uses.
  std::map<std::string, std::shared_ptr<const BufferDecl>> buffers;
  std::map<std::string, std::shared_ptr<const ParamDecl>> params;
  for (const Expr& n : topo_order(e)) {
    if (n.kind() == NodeKind::Load) {
      buffers.emplace(n->buffer->name, n->buffer);
    } else if (n.kind() == NodeKind::Param) {
      params.emplace(n->param->name, n->param);
    } else if (n.kind() == NodeKind::Var) {
      switch (static_cast<Var>(n->ival)) {
      case Var::B:
        dep.b = true;
        break;
      case Var::H:
        dep.h = true;
        break;
      case Var::Q:
        dep.q = true;
        break;
      case Var::KV:
        dep.kv = true;
        break;
      case Var::Score:
        dep.score = true;
        break;
      }
    }
  }
  for (auto& [name, decl] : buffers)
    dep.buffers.push_back(decl);
  for (auto& [name, decl] : params)
    dep.params.push_back(decl);
  return dep;
}

} // namespace flexjit
