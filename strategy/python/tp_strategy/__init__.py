"""tp_strategy: write a trading strategy in Python and run it as instance k
of N of a strategy group, with the same delivery guarantees as the C++
strategy program (journal before send, resend until acked, give-up with a
dead letter, ids unique across restarts, feed health, sharding).

    from tp_strategy import Strategy, BUY, SELL, Sma

    class Cross(Strategy):
        def on_start(self):
            self.fast = self.ctx.params.integer("fast", 5)
            ...
        def on_tick(self, tick):
            ...
            self.ctx.emit(tick.instrument, BUY)

Run: python3 -m tp_strategy --config deploy.toml --group G --shard K --shards N
(the supervisor does this for every kind = "python" group). The API mirrors
strategy/sdk/include/tp/strategy.hpp; the guide is docs/STRATEGIES.md."""

from .api import (ACCEPTED, ALIVE, BUY, CANCELED, DEAD, DEBUG, ERROR, EXPIRED, FILLED, GAP, GTC, GTD,  # noqa: F401
                  INFO, IOC, LIMIT, MARKET, NEW, PARTIALLY_FILLED, REJECTED, RESTARTED, SELL, UNKNOWN, WARN,
                  FeedEvent, OrderUpdate, ParamError, Params, Strategy, Tick, is_final)
from .indicators import Ema, RollingMax, RollingMin, Rsi, Sma  # noqa: F401

__all__ = ["Strategy", "Tick", "FeedEvent", "OrderUpdate", "Params", "ParamError", "BUY", "SELL",
           "NEW", "ACCEPTED", "PARTIALLY_FILLED", "FILLED", "REJECTED", "CANCELED", "UNKNOWN", "EXPIRED",
           "is_final", "MARKET", "LIMIT", "IOC", "GTC", "GTD",
           "DEAD", "ALIVE", "RESTARTED", "GAP", "DEBUG", "INFO", "WARN", "ERROR",
           "Sma", "Ema", "Rsi", "RollingMin", "RollingMax"]
