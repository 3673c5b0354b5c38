# Compiles the kernel templates the variant table names with clang-19 to NVPTX
# bitcode and embeds the bitcode (and CUDA's libdevice) in the library through an
# assembler .incbin, indexed by generated/EmbeddedBitcode.inc.
file(GLOB FLEXJIT_TEMPLATE_HEADERS CONFIGURE_DEPENDS
  ${CMAKE_CURRENT_SOURCE_DIR}/codegen/templates/*.h)
set(gen ${CMAKE_CURRENT_BINARY_DIR}/generated)
file(MAKE_DIRECTORY ${gen})

# FLEXJIT_TEMPLATE_BITCODE_DIR: embed the bitcode another build of the same tree compiled (its
# generated/ directory) instead of compiling it again: the bitcode is device code, the same for
# every host build type and sanitizer (scripts/test.sh's sanitizer builds use it).
set(FLEXJIT_TEMPLATE_BITCODE_DIR "" CACHE PATH
    "embed the template bitcode of this directory (another build's generated/) instead of compiling it")
set(bitcode_files)
set(asm "\t.section .rodata\n")
set(index "")
macro(flexjit_embed symbol path)
  string(APPEND asm "\t.balign 16\n\t.globl ${symbol}\n\t.hidden ${symbol}\n${symbol}:\n"
    "\t.incbin \"${path}\"\n\t.globl ${symbol}_end\n\t.hidden ${symbol}_end\n${symbol}_end:\n")
  string(APPEND index "FLEXJIT_EMBEDDED(${symbol})\n")
endmacro()

# The bitcode list is the variant table's (codegen/Variants.cpp): every
# FLEXJIT_BITCODE(stem, variant, arch) there is codegen/templates/<stem>.cu compiled for
# <arch>, once per variant (-DFLEXJIT_ONE_VARIANT and the variant's dtype and head dims,
# FLEXJIT_VARIANT_* in prelude.h) so the JIT parses and optimizes only the kernel it needs.
set(FLEXJIT_VARIANT_TABLE ${CMAKE_CURRENT_SOURCE_DIR}/codegen/Variants.cpp)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${FLEXJIT_VARIANT_TABLE})
file(STRINGS ${FLEXJIT_VARIANT_TABLE} rows REGEX "FLEXJIT_BITCODE\\([a-z_0-9]+, *[a-z_0-9]*, *sm_")
set(FLEXJIT_BITCODE_ROWS "")
foreach(row ${rows})
  string(REGEX MATCH "FLEXJIT_BITCODE\\(([a-z_0-9]+), *([a-z_0-9]*), *(sm_[0-9a-z]+)\\)" _ "${row}")
  set(name ${CMAKE_MATCH_1})
  set(variant ${CMAKE_MATCH_2})
  set(arch ${CMAKE_MATCH_3})
  set(cu ${CMAKE_CURRENT_SOURCE_DIR}/codegen/templates/${name}.cu)
  if(NOT EXISTS ${cu})
    message(FATAL_ERROR "codegen/Variants.cpp names template ${name}.cu, which does not exist")
  endif()
  if("${variant}" STREQUAL "")
    set(stem ${name})
    set(defines)
  else()
    # <dtype>_d<Dqk>[_v<Dv>]: the one entry the template instantiates (prelude.h).
    if(NOT variant MATCHES "^(f16|bf16)_d([0-9]+)(_v([0-9]+))?$")
      message(FATAL_ERROR "codegen/Variants.cpp: variant '${variant}' is not <dtype>_d<Dqk>[_v<Dv>]")
    endif()
    set(dqk ${CMAKE_MATCH_2})
    set(dv ${CMAKE_MATCH_4})
    if("${dv}" STREQUAL "")
      set(dv ${dqk})
    endif()
    if(CMAKE_MATCH_1 STREQUAL "bf16")
      set(bf16 true)
    else()
      set(bf16 false)
    endif()
    set(stem ${name}_${variant})
    set(defines -DFLEXJIT_ONE_VARIANT -DFLEXJIT_VARIANT_${variant} -DFLEXJIT_VARIANT_NAME=${variant}
                -DFLEXJIT_VARIANT_BF16=${bf16} -DFLEXJIT_VARIANT_DQK=${dqk} -DFLEXJIT_VARIANT_DV=${dv})
  endif()
  set(bc ${gen}/${stem}.${arch}.bc)
  if(FLEXJIT_TEMPLATE_BITCODE_DIR)
    set(bc ${FLEXJIT_TEMPLATE_BITCODE_DIR}/${stem}.${arch}.bc)
  endif()
  if(bc IN_LIST bitcode_files)
    message(FATAL_ERROR "codegen/Variants.cpp lists ${stem} for ${arch} twice")
  endif()
  if(FLEXJIT_TEMPLATE_BITCODE_DIR)
    if(NOT EXISTS ${bc})
      message(FATAL_ERROR "FLEXJIT_TEMPLATE_BITCODE_DIR has no ${stem}.${arch}.bc: build that "
                          "tree first (its flexjit_templates target)")
    endif()
  else()
    add_custom_command(OUTPUT ${bc}
      COMMAND ${FLEXJIT_CLANG} -x cuda --cuda-device-only --cuda-gpu-arch=${arch}
              -nocudainc -nocudalib -Wno-unknown-cuda-version -std=c++20 -O3 -emit-llvm -c
              ${defines} -I${CMAKE_CURRENT_SOURCE_DIR} ${cu} -o ${bc} -MD -MF ${bc}.d
      DEPENDS ${cu} ${FLEXJIT_TEMPLATE_HEADERS}
      DEPFILE ${bc}.d # what the .cu includes, a .cu too (attention_fwd_ws_persistent.cu)
      COMMENT "clang-19: ${name}.cu -> ${stem}.${arch}.bc" VERBATIM)
  endif()
  list(APPEND bitcode_files ${bc})
  flexjit_embed(flexjit_bc_${stem}_${arch} ${bc})
endforeach()
list(LENGTH bitcode_files count)
message(STATUS "flexjit: ${count} template bitcodes from the variant table")
flexjit_embed(flexjit_bc_libdevice ${FLEXJIT_LIBDEVICE})
string(APPEND asm "\t.section .note.GNU-stack,\"\",@progbits\n")

file(CONFIGURE OUTPUT ${gen}/EmbeddedBitcode.S CONTENT "${asm}")
file(CONFIGURE OUTPUT ${gen}/EmbeddedBitcode.inc CONTENT "${index}")
set_source_files_properties(${gen}/EmbeddedBitcode.S PROPERTIES
  OBJECT_DEPENDS "${bitcode_files};${FLEXJIT_LIBDEVICE}")
add_custom_target(flexjit_templates DEPENDS ${bitcode_files})
set(FLEXJIT_EMBED_SOURCES ${gen}/EmbeddedBitcode.S)
