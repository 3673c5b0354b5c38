# Compiles codegen/templates/*.cu with clang-19 to NVPTX bitcode, once per
# architecture, and embeds the bitcode (and CUDA's libdevice) in the library
# through an assembler .incbin, indexed by generated/EmbeddedBitcode.inc.
set(FLEXJIT_ARCHS sm_80 sm_90a)
file(GLOB FLEXJIT_TEMPLATES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/codegen/templates/*.cu)
file(GLOB FLEXJIT_TEMPLATE_HEADERS CONFIGURE_DEPENDS
  ${CMAKE_CURRENT_SOURCE_DIR}/codegen/templates/*.h)
set(gen ${CMAKE_CURRENT_BINARY_DIR}/generated)
file(MAKE_DIRECTORY ${gen})

set(bitcode_files)
set(asm "\t.section .rodata\n")
set(index "")
macro(flexjit_embed symbol path)
  string(APPEND asm "\t.balign 16\n\t.globl ${symbol}\n\t.hidden ${symbol}\n${symbol}:\n"
    "\t.incbin \"${path}\"\n\t.globl ${symbol}_end\n\t.hidden ${symbol}_end\n${symbol}_end:\n")
  string(APPEND index "FLEXJIT_EMBEDDED(${symbol})\n")
endmacro()

# A template with variants is compiled once per variant (-DFLEXJIT_ONE_VARIANT
# -DFLEXJIT_VARIANT_<v>), so the JIT parses and optimizes only the kernel it needs.
set(FLEXJIT_VARIANTS_attention_fwd f16_d64 f16_d128 bf16_d64 bf16_d128)
set(FLEXJIT_VARIANTS_attention_bwd f16_d64 f16_d128 bf16_d64 bf16_d128)

foreach(cu ${FLEXJIT_TEMPLATES})
  get_filename_component(name ${cu} NAME_WE)
  set(variants ${FLEXJIT_VARIANTS_${name}})
  if(NOT variants)
    set(variants "-")
  endif()
  foreach(variant ${variants})
    foreach(arch ${FLEXJIT_ARCHS})
      if(variant STREQUAL "-")
        set(stem ${name})
        set(defines)
      else()
        set(stem ${name}_${variant})
        set(defines -DFLEXJIT_ONE_VARIANT -DFLEXJIT_VARIANT_${variant})
      endif()
      set(bc ${gen}/${stem}.${arch}.bc)
      add_custom_command(OUTPUT ${bc}
        COMMAND ${FLEXJIT_CLANG} -x cuda --cuda-device-only --cuda-gpu-arch=${arch}
                -nocudainc -nocudalib -Wno-unknown-cuda-version -std=c++20 -O3 -emit-llvm -c
                ${defines} -I${CMAKE_CURRENT_SOURCE_DIR} ${cu} -o ${bc}
        DEPENDS ${cu} ${FLEXJIT_TEMPLATE_HEADERS}
        COMMENT "clang-19: ${name}.cu -> ${stem}.${arch}.bc" VERBATIM)
      list(APPEND bitcode_files ${bc})
      string(REPLACE "." "_" sym "flexjit_bc_${stem}_${arch}")
      flexjit_embed(${sym} ${bc})
    endforeach()
  endforeach()
endforeach()
flexjit_embed(flexjit_bc_libdevice ${FLEXJIT_LIBDEVICE})
string(APPEND asm "\t.section .note.GNU-stack,\"\",@progbits\n")

file(CONFIGURE OUTPUT ${gen}/EmbeddedBitcode.S CONTENT "${asm}")
file(CONFIGURE OUTPUT ${gen}/EmbeddedBitcode.inc CONTENT "${index}")
set_source_files_properties(${gen}/EmbeddedBitcode.S PROPERTIES
  OBJECT_DEPENDS "${bitcode_files};${FLEXJIT_LIBDEVICE}")
add_custom_target(flexjit_templates DEPENDS ${bitcode_files})
set(FLEXJIT_EMBED_SOURCES ${gen}/EmbeddedBitcode.S)
