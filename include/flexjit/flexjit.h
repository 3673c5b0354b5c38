// flexjit: FlexAttention for C++. The one header a user includes.
#pragma once

#include "blockmask/BlockMask.h"
#include "codegen/Codegen.h"
#include "compiler/Interpreter.h"
#include "compiler/Interval.h"
#include "compiler/Passes.h"
#include "compiler/Signature.h"
#include "dsl/Error.h"
#include "dsl/Mods.h"
#include "runtime/DeviceBindings.h"
#include "runtime/FlexAttention.h"
#include "runtime/Runtime.h"
