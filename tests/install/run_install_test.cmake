# ctest driver: installs flexjit's "library" component from BUILD_DIR into a
# fresh prefix under WORK_DIR, builds tests/install against it with
# find_package, and runs the result.
# Inputs: BUILD_DIR, SOURCE_DIR, WORK_DIR, GENERATOR, CXX_COMPILER, C_COMPILER.
foreach(var BUILD_DIR SOURCE_DIR WORK_DIR GENERATOR CXX_COMPILER C_COMPILER)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_install_test.cmake: -D${var}=... is required")
  endif()
endforeach()

function(run step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message(STATUS "${step}:\n${out}${err}")
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "install test: ${step} failed (${status})")
  endif()
  set(run_output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
run("install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix} --component library)
run("configure" ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/build -G ${GENERATOR}
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
    -DCMAKE_C_COMPILER=${C_COMPILER} -DCMAKE_PREFIX_PATH=${prefix})
run("build" ${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run("run" ${WORK_DIR}/build/flexjit_install_test)
if(NOT run_output MATCHES "BlockMask\\(shape=\\(1, 1, 1024, 1024\\), sparsity=43.75%")
  message(FATAL_ERROR "install test: unexpected output")
endif()
run("run the C program" ${WORK_DIR}/build/flexjit_install_c_test)
if(NOT run_output MATCHES "C API 1: causal block mask of 8 x 8 tiles, sparsity 43.75%")
  message(FATAL_ERROR "install test: unexpected output of the C program")
endif()

# The installed tree holds the public headers only, under include/flexjit/: no internal
# header is reachable, and no module folder is a top-level include name. The same
# compile of the public header succeeds, so a failure below is the header's absence.
function(probe header result)
  file(WRITE ${WORK_DIR}/probe.cpp "#include <${header}>\n")
  execute_process(COMMAND ${CXX_COMPILER} -std=c++20 -fsyntax-only -I${prefix}/include
                          ${WORK_DIR}/probe.cpp
                  RESULT_VARIABLE status OUTPUT_QUIET ERROR_VARIABLE err)
  set(${result} ${status} PARENT_SCOPE)
  set(probe_error "${err}" PARENT_SCOPE)
endfunction()
probe(flexjit/flexjit.h status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "install test: <flexjit/flexjit.h> does not compile alone:\n${probe_error}")
endif()
# The C API's header compiles alone as C99 and as C++.
file(WRITE ${WORK_DIR}/probe.c "#include <flexjit/flexjit_c.h>\n"
  "int main(void) { return flexjit_api_version() == FLEXJIT_C_API_VERSION ? 0 : 1; }\n")
execute_process(COMMAND ${C_COMPILER} -std=c99 -Wall -Wextra -Werror -fsyntax-only
                        -I${prefix}/include ${WORK_DIR}/probe.c
                RESULT_VARIABLE status ERROR_VARIABLE err)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "install test: <flexjit/flexjit_c.h> does not compile as C99:\n${err}")
endif()
probe(flexjit/flexjit_c.h status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "install test: <flexjit/flexjit_c.h> does not compile as C++:\n${probe_error}")
endif()
foreach(internal flexjit/compiler/Passes.h flexjit/compiler/Interpreter.h
        flexjit/codegen/Variants.h flexjit/runtime/KernelCache.h flexjit/testing/SeedMods.h
        dsl/Mods.h blockmask/BlockMask.h)
  probe(${internal} status)
  if(status EQUAL 0)
    message(FATAL_ERROR "install test: <${internal}> is reachable from the installed tree")
  endif()
endforeach()
file(GLOB_RECURSE installed RELATIVE ${prefix}/include ${prefix}/include/*)
message(STATUS "install test: installed headers: ${installed}")
file(REMOVE_RECURSE ${WORK_DIR})
