// A (mask_mod, score_mod) pair made ready for everything that checks, keys or builds a
// kernel of it: type checked, optimized, its signature, dependence and canonical text.
// Prepared once per pair and process (prepare_mods), then passed down from the public
// call to the kernel build; nothing else analyses mods.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "flexjit/compiler/IntervalRules.h"
#include "flexjit/compiler/Passes.h"
#include "flexjit/compiler/Signature.h"
#include "flexjit/dsl/Mods.h"

namespace flexjit {

struct PreparedMods {
  MaskMod mask; // as given: names for messages; holds the source nodes alive
  ScoreMod score;
  Expr mask_body; // type checked and optimized (simplify + cse to a fixed point)
  Expr score_body;
  ModSignature signature;     // of both optimized bodies: the FlexjitModArgs slots
  Dependence mask_dependence; // what the optimized mask reads (a block mask's broadcast)
  int mask_nodes = 0, score_nodes = 0, nodes = 0; // distinct nodes after optimization
  // The canonical text of both mods and their signature: the mods' part of every kernel
  // key ("signature ...\nmask_mod\n...\nscore_mod\n...\n"), and its hash.
  std::string text;
  Hash128 key;
  // Buffer dimensions indexed by exactly one variable (b, h, q_idx or kv_idx): such a
  // dimension is read at every value of the variable, so a call checks its length.
  struct IndexedDim {
    int slot = 0; // the buffer's signature slot
    int dim = 0;
    Var var = Var::B;
  };
  std::vector<IndexedDim> indexed_dims;
  // The mask body's interval program (interval_program): what the GPU block-mask builder
  // evaluates per tile.
  iv::Program mask_program;
};

// The prepared pair, memoized process-wide by the mods' names and body nodes
// (hash-consed, so structurally equal mods share an entry); the entry is never freed,
// so its address identifies the pair for the kernel cache. Thread-safe. Throws the
// type check's Error, memoizing nothing.
std::shared_ptr<const PreparedMods> prepare_mods(const MaskMod& mask,
                                                 const ScoreMod& score = ScoreMod());

} // namespace flexjit
