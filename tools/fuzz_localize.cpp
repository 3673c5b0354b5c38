// Localizes a GPU-vs-interpreter mismatch of a fuzz corpus case (tests/fuzz_corpus*/.fz):
// every int node (bit by bit) and bool node of the mask, on the GPU (eval_points) and by the
// interpreter, at the case's points; prints the nodes that differ. Built with the bench
// (target flexjit_fuzz_localize, installed into dist/bin); run on the GPU machine:
//   LD_LIBRARY_PATH=dist/lib dist/bin/flexjit_fuzz_localize CASE.fz (carry dist and the case).
#include "flexjit/compiler/Passes.h"
#include "flexjit/compiler/Visitor.h"
#include "flexjit/testing/EvalPoints.h"
#include "flexjit/testing/FuzzCase.h"
#include <cstdio>
#include <flexjit/flexjit.h>
#include <fstream>
#include <sstream>
using namespace flexjit;
using namespace flexjit::testing;
int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: flexjit_fuzz_localize CASE.fz\n");
    return 2;
  }
  std::ifstream in(argv[1]);
  std::stringstream ss;
  ss << in.rdbuf();
  FuzzCase c = parse_case("x", ss.str());
  if (!cuda_available()) {
    std::puts("no GPU");
    return 0;
  }
  const DeviceBindings device = to_device({c.mod.body}, c.mod.bindings);
  int n = 0;
  for (const Expr& e : topo_order(c.mod.body)) {
    if (e.kind() == NodeKind::IntConst || e.kind() == NodeKind::BoolConst)
      continue;
    std::vector<std::pair<std::string, MaskMod>> probes;
    if (e.type() == Type::Bool)
      probes.push_back({"bool", MaskMod("p", BoolExpr(e))});
    if (e.type() == Type::Int) {
      IntExpr x(e);
      for (int bit = 0; bit < 32; ++bit)
        probes.push_back({"bit" + std::to_string(bit), MaskMod("p", (x & (int)(1u << bit)) != 0)});
    }
    for (auto& [what, m] : probes) {
      const PointValues got = eval_points_cuda(m, ScoreMod(), c.points, device.bindings);
      for (size_t i = 0; i < c.points.size(); ++i) {
        const bool ref = evaluate(m.body(), c.points[i], c.mod.bindings).b;
        if (bool(got.mask[i]) != ref) {
          std::printf("MISMATCH point %zu node %s [%s]: gpu %d interp %d\n", i, print(e).c_str(),
                      what.c_str(), int(got.mask[i]), int(ref));
          ++n;
        }
      }
    }
  }
  std::printf("%d mismatches\n", n);
}
