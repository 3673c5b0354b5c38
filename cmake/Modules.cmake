# The library's modules, one CMake target each, in pipeline order: a module sees only
# itself and the modules before it. Each compiles against its own include layer,
# ${FLEXJIT_LAYERS}/<module>/flexjit/<m> -> <source>/<m> for exactly those modules, so
# an #include "flexjit/<later module>/..." does not build (tests/layers checks it).
# capi/ is the C API (include/flexjit/flexjit_c.h) over all of them.
set(FLEXJIT_MODULES support dsl compiler codegen runtime blockmask attention capi)
set(FLEXJIT_LAYERS ${CMAKE_CURRENT_BINARY_DIR}/layers)

# The public API: what <flexjit/flexjit.h> includes, the only headers installed (with
# flexjit.h and the C API's flexjit_c.h, both in include/flexjit/).
set(FLEXJIT_PUBLIC_HEADERS
  support/Error.h
  dsl/Types.h dsl/Expr.h dsl/Operators.h dsl/Mods.h
  compiler/Signature.h compiler/Parser.h
  codegen/Codegen.h
  runtime/Runtime.h runtime/DeviceBindings.h
  blockmask/BlockMask.h
  attention/FlexAttention.h)

# ${FLEXJIT_LAYERS}/<name>/flexjit/<m> for each of `modules` (folder links).
function(flexjit_layer name)
  set(root ${FLEXJIT_LAYERS}/${name}/flexjit)
  file(REMOVE_RECURSE ${FLEXJIT_LAYERS}/${name})
  file(MAKE_DIRECTORY ${root})
  foreach(m ${ARGN})
    file(CREATE_LINK ${CMAKE_CURRENT_SOURCE_DIR}/${m} ${root}/${m} SYMBOLIC)
  endforeach()
  foreach(header flexjit.h flexjit_c.h)
    file(CREATE_LINK ${CMAKE_CURRENT_SOURCE_DIR}/include/flexjit/${header} ${root}/${header}
      SYMBOLIC)
  endforeach()
endfunction()

set(below "")
set(previous "")
foreach(module ${FLEXJIT_MODULES})
  list(APPEND below ${module})
  flexjit_layer(${module} ${below})
  file(GLOB sources CONFIGURE_DEPENDS ${module}/*.cpp)
  add_library(flexjit_${module} OBJECT ${sources})
  target_include_directories(flexjit_${module} PRIVATE ${FLEXJIT_LAYERS}/${module})
  target_compile_options(flexjit_${module} PRIVATE ${FLEXJIT_WARNINGS}
    -ffunction-sections -fdata-sections)
  target_compile_definitions(flexjit_${module} PRIVATE FLEXJIT_VERSION="${PROJECT_VERSION}")
  target_link_libraries(flexjit_${module} PRIVATE fmt::fmt ${previous})
  set(previous flexjit_${module})
endforeach()
# Third-party headers only where a module needs them: LLVM in codegen, the CUDA driver
# API (cuda.h, loaded with dlopen) from the runtime up.
target_include_directories(flexjit_codegen SYSTEM PRIVATE ${LLVM_INCLUDE_DIRS})
target_include_directories(flexjit_codegen PRIVATE ${CMAKE_CURRENT_BINARY_DIR}/generated)
target_compile_definitions(flexjit_codegen PRIVATE ${LLVM_DEFINITIONS_LIST})
add_dependencies(flexjit_codegen flexjit_templates)
foreach(module runtime blockmask attention)
  target_include_directories(flexjit_${module} SYSTEM PRIVATE ${CUDAToolkit_INCLUDE_DIRS})
endforeach()
# DLPack (Debian's libdlpack-dev) in the C API, whose header includes dlpack/dlpack.h.
target_include_directories(flexjit_capi SYSTEM PRIVATE ${FLEXJIT_DLPACK_INCLUDE_DIR})

# Users: the public headers alone.
set(root ${FLEXJIT_LAYERS}/public/flexjit)
file(REMOVE_RECURSE ${FLEXJIT_LAYERS}/public)
foreach(header ${FLEXJIT_PUBLIC_HEADERS})
  get_filename_component(dir ${header} DIRECTORY)
  file(MAKE_DIRECTORY ${root}/${dir})
  file(CREATE_LINK ${CMAKE_CURRENT_SOURCE_DIR}/${header} ${root}/${header} SYMBOLIC)
endforeach()
foreach(header flexjit.h flexjit_c.h)
  file(CREATE_LINK ${CMAKE_CURRENT_SOURCE_DIR}/include/flexjit/${header} ${root}/${header} SYMBOLIC)
endforeach()
# Tests, examples, bench and tools: every module and testing/ (flexjit_testing).
flexjit_layer(all ${FLEXJIT_MODULES} testing)
