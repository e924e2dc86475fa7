# Shared by the CMake-script tests (package_test, gtest_example_test): required variables, and
# running a command with (must) or without (step) failing the test on a non-zero exit.
macro(require_vars)
  foreach(var ${ARGN})
    if(NOT DEFINED ${var})
      message(FATAL_ERROR "${var} not set")
    endif()
  endforeach()
endmacro()

function(step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE out)
  set(step_status ${status} PARENT_SCOPE)
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

function(must)
  step(${ARGN})
  if(NOT step_status EQUAL 0)
    message(FATAL_ERROR "failed (${step_status}): ${ARGN}\n${step_output}")
  endif()
  set(step_output "${step_output}" PARENT_SCOPE)
endfunction()
