// The warp-specialized forward on a persistent grid (attention_fwd_ws.cu with kPersistent:
// tile_scheduler.h's PersistentTiles): one CTA per SM, each looping over its work tiles.
#define FLEXJIT_FWD_WS_PERSISTENT 1
#include "codegen/templates/attention_fwd_ws.cu"
