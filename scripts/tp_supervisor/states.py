"""Names shared by every part of the supervisor: the programs, their start
order, the process states and the loop's timings."""

# Start order; strategy expands to strategy:0..N-1.
PROGRAMS = ["dead_letter", "dll_gateway", "executor", "strategy", "gateway"]
SCALABLE = "strategy"
STARTUP_S = 1.0    # alive this long (without a stats file) counts as RUNNING
TICK_S = 0.1       # longest sleep of the event loop

STARTING, RUNNING, STOPPING, BACKOFF, STOPPED, FATAL = (
    "STARTING", "RUNNING", "STOPPING", "BACKOFF", "STOPPED", "FATAL")
HUNG = "HUNG"
