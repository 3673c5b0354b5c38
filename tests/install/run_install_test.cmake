# ctest driver: installs flexjit's "library" component from BUILD_DIR into a
# fresh prefix under WORK_DIR, builds tests/install against it with
# find_package, and runs the result.
# Inputs: BUILD_DIR, SOURCE_DIR, WORK_DIR, GENERATOR, CXX_COMPILER.
foreach(var BUILD_DIR SOURCE_DIR WORK_DIR GENERATOR CXX_COMPILER)
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
    -DCMAKE_PREFIX_PATH=${prefix})
run("build" ${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run("run" ${WORK_DIR}/build/flexjit_install_test)
if(NOT run_output MATCHES "BlockMask\\(shape=\\(1, 1, 1024, 1024\\), sparsity=43.75%")
  message(FATAL_ERROR "install test: unexpected output")
endif()
file(REMOVE_RECURSE ${WORK_DIR})
