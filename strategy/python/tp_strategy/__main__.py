"""python3 -m tp_strategy --config F [--set k=v ...] --group G --shard K --shards N [--entry module:Class]

Exit codes: 0 after a clean stop (SIGTERM/SIGINT); 2 for a bad command line,
config, entry (module or class missing, not a Strategy subclass) or a
refused parameter, before any file or socket is opened; 1 for a failure at
run time (a journal locked by another process, an endpoint that cannot be
used...)."""

import sys

from .main import main

sys.exit(main())
