// The process-wide stop flag, set by SIGINT and SIGTERM: the one mutable
// global the programs have. Loops poll it between iterations.
#pragma once

namespace tp {

// Installs SIGINT/SIGTERM handlers that set the flag (idempotent).
void install_stop_handlers();
bool stop_requested() noexcept;
void request_stop() noexcept;  // for tests and for programs that end by themselves

}  // namespace tp
