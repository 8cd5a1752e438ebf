"""What the runtime shares with the supervisor rather than copies: reading
the file and the `--set` override rule, the typed reading of a table's keys
(Section), the endpoints' reading (defaults, reports and control derived
from orders), the strategy groups' reading and the sharding function
(scripts/tp_supervisor/, each held equal to the C++ one by its own tests). From
a checkout, scripts/ is found beside this package."""

import os
import sys

_REPO_SCRIPTS = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "scripts"))
if os.path.isdir(_REPO_SCRIPTS) and _REPO_SCRIPTS not in sys.path:
    sys.path.append(_REPO_SCRIPTS)

from tp_supervisor.settings import ConfigError as SettingsError  # noqa: E402
from tp_supervisor.settings import (DEFAULT_ENDPOINTS, DEFAULT_INSTRUMENTS, STRATEGY_GROUP_KEYS,  # noqa: E402
                                    Section, Settings, StrategyGroup, is_int, read_endpoints, read_hosts,
                                    read_root, read_strategy, read_text)
from tp_supervisor.sharding import instruments_for_shard  # noqa: E402

__all__ = ["DEFAULT_ENDPOINTS", "DEFAULT_INSTRUMENTS", "STRATEGY_GROUP_KEYS", "Section", "Settings", "SettingsError",
           "StrategyGroup", "instruments_for_shard", "is_int", "read_endpoints", "read_hosts", "read_root",
           "read_strategy", "read_text"]
