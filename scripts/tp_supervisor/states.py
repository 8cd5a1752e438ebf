"""Names shared by every part of the supervisor: the programs, their start
order, the process states and the loop's timings."""

# Start order; "strategy" is the strategy tier: for each group G in config
# order, its processes G-0..G-(n-1).
PROGRAMS = ["dead_letter", "dll_gateway", "executor", "strategy", "gateway"]
SCALABLE = "strategy"
PYTHON_MODULE = "tp_strategy"   # python groups run `python3 -m tp_strategy`
STARTUP_S = 1.0    # alive this long (without a stats file) counts as RUNNING
TICK_S = 0.1       # longest sleep of the event loop

STARTING, RUNNING, STOPPING, BACKOFF, STOPPED, FATAL = (
    "STARTING", "RUNNING", "STOPPING", "BACKOFF", "STOPPED", "FATAL")
HUNG = "HUNG"
# Every state, in the order a process passes them: the bounded label set of
# tp_supervisor_process_state (metrics.py).
STATES = (STARTING, RUNNING, HUNG, STOPPING, BACKOFF, STOPPED, FATAL)
