# What pgdrill::pgdrill links against; included by the build and by the installed package config,
# so a consumer finds exactly the dependencies the build used.
include(CMakeFindDependencyMacro)
find_dependency(Threads)
find_dependency(nlohmann_json 3.10)
find_dependency(pugixml)
find_dependency(LibArchive)  # decompression: gzip, zstd, lz4, bzip2, xz
find_dependency(OpenSSL)     # SHA-256 of backup files

# libpqxx 7.x ships a CMake package; 6.4 (Debian 12) only a pkg-config file.
find_package(libpqxx CONFIG QUIET)
if(TARGET libpqxx::pqxx)
  set(PGDRILL_PQXX_TARGET libpqxx::pqxx)
else()
  find_dependency(PkgConfig)
  pkg_check_modules(pgdrill_pqxx REQUIRED IMPORTED_TARGET GLOBAL libpqxx)
  set(PGDRILL_PQXX_TARGET PkgConfig::pgdrill_pqxx)
endif()
find_dependency(PkgConfig)
pkg_check_modules(pgdrill_pq REQUIRED IMPORTED_TARGET GLOBAL libpq)
