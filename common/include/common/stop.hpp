// The process-wide stop flag, set by SIGINT and SIGTERM: the one mutable
// global the programs have. A RunLoop reads it (its default stop source)
// once a turn; nothing else in a program needs to.
#pragma once

namespace tp {

// Routes SIGINT/SIGTERM to a thread that sets the flag (idempotent). Call it
// first in main, before any other thread exists.
void install_stop_handlers();
bool stop_requested() noexcept;
void request_stop() noexcept;  // for tests and for programs that end by themselves

}  // namespace tp
