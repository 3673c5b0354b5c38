// flexjit: FlexAttention for C++. The one header a user includes: mods, buffers and
// params, block masks, the attention calls, device buffers, errors, the kernel cache's
// controls and compile_to_ptx for inspection.
#pragma once

#include "flexjit/attention/FlexAttention.h"
#include "flexjit/blockmask/BlockMask.h"
#include "flexjit/codegen/Codegen.h"
#include "flexjit/compiler/Parser.h"
#include "flexjit/dsl/Mods.h"
#include "flexjit/runtime/DeviceBindings.h"
#include "flexjit/runtime/Runtime.h"
#include "flexjit/support/Error.h"
