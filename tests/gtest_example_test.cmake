# Builds tests/gtest_example against an installed pgdrill, makes a real backup with the runner,
# and runs the example's tests twice: against the good backup (all pass) and against a damaged
# one (they fail, readably). Both GoogleTest XML files are read back with junitparser.
include(${CMAKE_CURRENT_LIST_DIR}/script_steps.cmake)
require_vars(SOURCE_DIR BUILD_DIR WORK_DIR RUNNER)
file(REMOVE_RECURSE ${WORK_DIR})

must(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix)
must(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/gtest_example -B ${WORK_DIR}/build -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
must(${CMAKE_COMMAND} --build ${WORK_DIR}/build)

# A good backup, and a damaged one: dumped without the orders table but with the same manifest.
foreach(kind good damaged)
  file(MAKE_DIRECTORY ${WORK_DIR}/${kind})
  set(extra "")
  if(kind STREQUAL "damaged")
    set(extra "-- -t customers")
  endif()
  must(${RUNNER} with-server -- sh -c
       "psql -X -q -v ON_ERROR_STOP=1 -f ${SOURCE_DIR}/ci/demo-seed.sql && ${RUNNER} dump --out ${WORK_DIR}/${kind} --name shop ${extra}")
  file(WRITE ${WORK_DIR}/${kind}/shop.json "{\"name\": \"shop\", \"backup\": {\"directory\": \".\", \"pattern\": \"shop_*.dump\"},
    \"assertions\": [{\"type\": \"tables_present\", \"expect\": \"manifest\"}, {\"type\": \"checksum\", \"expect\": \"manifest\"},
                     {\"type\": \"sequences\"}]}")
endforeach()

foreach(kind good damaged)
  step(${CMAKE_COMMAND} -E env SHOP_BACKUP_DIR=${WORK_DIR}/${kind} SHOP_SCENARIO=${WORK_DIR}/${kind}/shop.json
       ${WORK_DIR}/build/shop_backup_test --gtest_output=xml:${WORK_DIR}/${kind}.xml)
  set(${kind}_status ${step_status})
  set(${kind}_output "${step_output}")
  execute_process(COMMAND /usr/bin/python3 ${SOURCE_DIR}/tests/junit_summary.py ${WORK_DIR}/${kind}.xml
                  OUTPUT_VARIABLE ${kind}_junit RESULT_VARIABLE junit_status)
  if(NOT junit_status EQUAL 0)
    message(FATAL_ERROR "junitparser could not read ${kind}.xml")
  endif()
endforeach()

string(REGEX MATCHALL "\n?case [^\n]* passed" good_passed "${good_junit}")
list(LENGTH good_passed good_passed_count)
# 7 fixture tests; the scenario's drill: 2 hygiene checks (size, the dump's sha256 sidecar),
# 4 assertions (tables_present, a checksum per table, sequences) and the two standing checks every
# scenario drill has (not_empty, roles), named as `pgdrill run` names them.
if(NOT good_status EQUAL 0 OR NOT good_passed_count EQUAL 16)
  message(FATAL_ERROR "the good backup should pass all 16 tests:\n${good_junit}\n${good_output}")
endif()
if(damaged_status EQUAL 0)
  message(FATAL_ERROR "the damaged backup passed:\n${damaged_output}")
endif()
foreach(expected
    "case shop_backup/has_every_table failure"
    "case shop_backup/every_customer_came_back passed"
    "case shop_backup/row_counts_and_content_match_the_manifest failure"
    "case scenario/shop_scenario/holds/checksum_public_orders failure"
    "case scenario/shop_scenario/holds/backup_sha256 passed"
    "case scenario/shop_scenario/holds/roles passed")
  if(NOT damaged_junit MATCHES "${expected}")
    message(FATAL_ERROR "missing from the damaged run's XML: ${expected}\n${damaged_junit}")
  endif()
endforeach()
foreach(readable "tables_present: missing from the restore: public.orders" "row_count public.orders: table missing")
  string(FIND "${damaged_output}" "${readable}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "the damaged run's messages lack '${readable}':\n${damaged_output}")
  endif()
endforeach()
message(STATUS "good backup: all tests passed; damaged backup: failed with readable messages")
