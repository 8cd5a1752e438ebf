// How both durable stores (executor.db, dll_gateway.db) open their SQLite
// file. Opening checks the file before the program relies on it: a store
// that would silently miss committed rows is refused, not repaired (see
// docs/ARCHITECTURE.md, "Start-up checks of the stores"). No state; the
// connection is used by one thread (common/sqlite.hpp).
#pragma once

#include <string>

#include "common/sqlite.hpp"

namespace tp::sqlite {

// A store's write-ahead log is checkpointed by its owner between bursts
// once it holds checkpoint_pages (Connection::checkpoint_due), and by the
// commit that takes it past forced_checkpoint_pages when the owner found no
// quiet moment: at most ~32 MiB at 4 KiB pages.
inline constexpr int checkpoint_pages = 1000;
inline constexpr int forced_checkpoint_pages = 8000;

// Refuses a damaged write-ahead log (<path>-wal, scanned before SQLite reads
// it: common/sqlite_wal.hpp), opens `path` (creating it), holds it for this
// process (locking_mode=EXCLUSIVE: no -shm file, no per-transaction locks),
// sets journal_mode=WAL, synchronous=NORMAL, the busy timeout and the
// checkpoints above (Connection::defer_checkpoints), and refuses
// a database that fails PRAGMA quick_check. Throws StoreError naming the
// file ("<name> (<absolute path>): <problem>").
Connection open_store(const std::string& path, int busy_timeout_ms);

}  // namespace tp::sqlite
