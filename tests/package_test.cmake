# Installs pgdrill into a fresh prefix, then builds and runs the consumer project against it
# with find_package, and again with add_subdirectory of the sources.
include(${CMAKE_CURRENT_LIST_DIR}/script_steps.cmake)
require_vars(SOURCE_DIR BUILD_DIR WORK_DIR)
file(REMOVE_RECURSE ${WORK_DIR})

function(expect_consumer_runs binary)
  must(${binary})
  if(NOT step_output MATCHES "scenario consumer with PostgreSQL [0-9]+")
    message(FATAL_ERROR "unexpected consumer output: ${step_output}")
  endif()
endfunction()

must(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix)
foreach(header pgdrill/pgdrill.hpp pgdrill/detail/json_reader.hpp)
  if(NOT EXISTS ${WORK_DIR}/prefix/include/${header})
    message(FATAL_ERROR "not installed: include/${header}")
  endif()
endforeach()

must(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/consumer -B ${WORK_DIR}/installed -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
must(${CMAKE_COMMAND} --build ${WORK_DIR}/installed)
expect_consumer_runs(${WORK_DIR}/installed/consumer)

must(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/consumer -B ${WORK_DIR}/subdirectory -DPGDRILL_SOURCE=${SOURCE_DIR})
must(${CMAKE_COMMAND} --build ${WORK_DIR}/subdirectory)
expect_consumer_runs(${WORK_DIR}/subdirectory/consumer)
if(EXISTS ${WORK_DIR}/subdirectory/pgdrill/tests)
  message(FATAL_ERROR "add_subdirectory built pgdrill's own tests; they should be off for a subproject")
endif()
message(STATUS "find_package and add_subdirectory consumers built and ran")
