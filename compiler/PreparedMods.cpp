#include "flexjit/compiler/PreparedMods.h"

#include <fmt/format.h>

#include <map>
#include <mutex>
#include <tuple>

#include "flexjit/compiler/Interval.h"
#include "flexjit/compiler/Visitor.h"

namespace flexjit {

namespace {

PreparedMods prepare(const MaskMod& mask, const ScoreMod& score) {
  type_check(mask);
  type_check(score);
  PreparedMods p;
  p.mask = mask;
  p.score = score;
  p.mask_body = optimize(mask.body());
  p.score_body = optimize(score.body());
  const std::vector<Expr> roots = {p.mask_body, p.score_body};
  p.signature = ModSignature::of(roots);
  p.mask_dependence = analyze_dependence(p.mask_body);
  p.mask_program = interval_program(p.mask_body, p.signature);
  const std::vector<Expr> order = topo_order(roots);
  p.nodes = static_cast<int>(order.size());
  p.mask_nodes = static_cast<int>(topo_order(p.mask_body).size());
  p.score_nodes = static_cast<int>(topo_order(p.score_body).size());
  p.text = fmt::format("signature {}\nmask_mod\n{}\nscore_mod\n{}\n", p.signature.to_string(),
                       print(p.mask_body), print(p.score_body));
  p.key = hash_text(p.text);
  for (const Expr& e : order) {
    if (e.kind() != NodeKind::Load)
      continue;
    for (size_t d = 0; d < e->operands.size(); ++d)
      if (const Expr& index = e->operands[d]; index.kind() == NodeKind::Var)
        p.indexed_dims.push_back({p.signature.buffer_slot(*e->buffer), static_cast<int>(d),
                                  static_cast<Var>(index->ival)});
  }
  return p;
}

} // namespace

std::shared_ptr<const PreparedMods> prepare_mods(const MaskMod& mask, const ScoreMod& score) {
  using Key = std::tuple<const Node*, const Node*, std::string, std::string>;
  static std::mutex mutex;
  static auto* memo = new std::map<Key, std::shared_ptr<const PreparedMods>>; // never destroyed
  Key key{mask.body().get(), score.body().get(), mask.name(), score.name()};
  {
    std::lock_guard lock(mutex);
    if (auto it = memo->find(key); it != memo->end())
      return it->second;
  }
  auto fresh = std::make_shared<const PreparedMods>(prepare(mask, score)); // may throw
  std::lock_guard lock(mutex);
  return memo->try_emplace(std::move(key), std::move(fresh)).first->second;
}

} // namespace flexjit
