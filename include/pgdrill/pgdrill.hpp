// pgdrill: prove PostgreSQL backups can be restored. Includes the whole library.
#pragma once

#include <pgdrill/assertions.hpp>
#include <pgdrill/backup.hpp>
#include <pgdrill/binaries.hpp>
#include <pgdrill/checks.hpp>
#include <pgdrill/checksum.hpp>
#include <pgdrill/container.hpp>
#include <pgdrill/drill.hpp>
#include <pgdrill/error.hpp>
#include <pgdrill/existing.hpp>
#include <pgdrill/history.hpp>
#include <pgdrill/integrity.hpp>
#include <pgdrill/hygiene.hpp>
#include <pgdrill/local.hpp>
#include <pgdrill/manifest.hpp>
#include <pgdrill/process.hpp>
#include <pgdrill/provider.hpp>
#include <pgdrill/report.hpp>
#include <pgdrill/reports.hpp>
#include <pgdrill/restore.hpp>
#include <pgdrill/result.hpp>
#include <pgdrill/scenario.hpp>
#include <pgdrill/schema.hpp>
#include <pgdrill/snapshot.hpp>
#include <pgdrill/stream.hpp>
#include <pgdrill/workspace.hpp>
