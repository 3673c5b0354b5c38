# ctest driver: installs the components "library" and "python" from BUILD_DIR into a fresh
# prefix under WORK_DIR and imports the installed package with PYTHON, without
# FLEXJIT_LIBRARY: it must find the installed libflexjit.so through _install_config.py.
# Inputs: BUILD_DIR, WORK_DIR, PYTHON, PYTHON_DIR.
foreach(var BUILD_DIR WORK_DIR PYTHON PYTHON_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_python_install_test.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT EXISTS "${PYTHON}")
  message("flexjit_python_install: skipped, ${PYTHON} is not there")
  cmake_language(EXIT 77)
endif()
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
foreach(component library python)
  execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix}
    --component ${component} RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "python install test: installing ${component} failed (${status})")
  endif()
endforeach()
if(IS_ABSOLUTE "${PYTHON_DIR}")
  set(package_parent "${PYTHON_DIR}")
else()
  set(package_parent "${prefix}/${PYTHON_DIR}")
endif()
set(code "import sys; sys.path.insert(0, sys.argv[1]); import flexjit, flexjit._lib as L
bm = flexjit.create_block_mask(lambda b, h, q, kv: q >= kv, 1, 1, 1024, 1024, device='cpu')
print(L.lib().flexjit_path); print(repr(bm))")
execute_process(COMMAND ${CMAKE_COMMAND} -E env --unset=FLEXJIT_LIBRARY PYTHONDONTWRITEBYTECODE=1
    ${PYTHON} -c "${code}" ${package_parent}
  RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
message(STATUS "run:\n${out}${err}")
if(NOT status EQUAL 0)
  message(FATAL_ERROR "python install test: the installed package failed (${status})")
endif()
if(NOT out MATCHES "^${prefix}/[^\n]*libflexjit.so\n")
  message(FATAL_ERROR "python install test: the package did not load the installed library")
endif()
if(NOT out MATCHES "BlockMask\\(shape=\\(1, 1, 1024, 1024\\), sparsity=43.75%")
  message(FATAL_ERROR "python install test: unexpected output")
endif()
