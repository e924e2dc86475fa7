# The Debian package (`cpack -G DEB` in the build directory): the runner, its man page, the
# headers, the CMake package, the scenario schema with example scenarios, and run-drills (the
# CI templates' driver). Runtime libraries
# are found by dpkg-shlibdeps; the PostgreSQL client tools are declared, the server and a
# container engine recommended (the local and container providers), and the -dev packages the
# headers include suggested for library users.

# `cpack` and `cmake --install` package what is built, and build nothing more: ci/image builds
# only the runner and its man page, not the test suite.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

configure_file(${CMAKE_CURRENT_SOURCE_DIR}/drills/pgdrill.1.in ${CMAKE_CURRENT_BINARY_DIR}/pgdrill.1 @ONLY)
add_custom_command(OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/pgdrill.1.gz
  COMMAND gzip -9 -n -c ${CMAKE_CURRENT_BINARY_DIR}/pgdrill.1 > ${CMAKE_CURRENT_BINARY_DIR}/pgdrill.1.gz
  DEPENDS ${CMAKE_CURRENT_BINARY_DIR}/pgdrill.1 VERBATIM)
add_custom_target(pgdrill-man ALL DEPENDS ${CMAKE_CURRENT_BINARY_DIR}/pgdrill.1.gz)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/pgdrill.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(PROGRAMS ci/run-drills DESTINATION ${CMAKE_INSTALL_DATADIR}/pgdrill)
install(FILES scenarios/pgdrill-scenario.schema.json scenarios/demo.json scenarios/nightly-shop.json
  DESTINATION ${CMAKE_INSTALL_DATADIR}/pgdrill/scenarios)

set(CPACK_PACKAGE_NAME pgdrill)
set(CPACK_PACKAGE_VENDOR "pgdrill")
set(CPACK_PACKAGE_CONTACT "pgdrill maintainers <pgdrill@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "prove that PostgreSQL backups can be restored")
set(CPACK_PACKAGE_DESCRIPTION "pgdrill restores the latest backup into a throwaway PostgreSQL server\n\
(local cluster, container or scratch database), runs row-count, checksum, SQL and structure\n\
assertions, and reports as JUnit, JSON, Markdown, Prometheus metrics and HTML.")
set(CPACK_PACKAGE_INSTALL_DIRECTORY pgdrill)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION database)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "postgresql-client, bubblewrap")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "postgresql, podman | docker.io, gzip, zstd, lz4, bzip2, xz-utils")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "libpqxx-dev, libpq-dev, nlohmann-json3-dev, libpugixml-dev, libarchive-dev, libssl-dev")
set(CPACK_STRIP_FILES ON)
include(CPack)
