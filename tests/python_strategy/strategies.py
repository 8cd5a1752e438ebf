"""Trivial strategies for the tests and the benchmark: a fixed, known signal
rate (every n-th tick of an instrument, alternating BUY and SELL, like the
C++ every_nth), and a few that are broken on purpose."""

import time

from tp_strategy import BUY, SELL, Strategy


class EveryNth(Strategy):
    def on_start(self):
        self.n = self.ctx.params.integer("n", 100)
        self.ctx.params.require(self.n >= 1, "n", ">= 1")
        self.count = {}
        self.side = {}
        self.orders = []
        self.feed_events = []

    def on_tick(self, tick):
        c = self.count.get(tick.instrument, 0) + 1
        self.count[tick.instrument] = c
        if c % self.n == 0:
            side = self.side.get(tick.instrument, BUY)
            if self.ctx.emit(tick.instrument, side):
                self.side[tick.instrument] = SELL if side == BUY else BUY

    def on_feed(self, event):
        self.ctx.log("info", f"feed event {event}")

    def on_order(self, update):
        if update.refused or update.final:
            self.ctx.log("debug", f"order {update}")


class Silent(Strategy):
    """Reads ticks, never emits: the benchmark's pure-consumption figure."""

    def on_tick(self, tick):
        pass


class NotAStrategy:
    def on_tick(self, tick):
        pass


class WantsParam(Strategy):
    def on_start(self):
        self.ctx.params.integer("window", 10)

    def on_tick(self, tick):
        pass


class Slow(Strategy):
    """Takes `ms` milliseconds per tick: a strategy that falls behind its
    feed (what its queued ticks cost in memory)."""

    def on_start(self):
        self.ms = self.ctx.params.integer("ms", 5)

    def on_tick(self, tick):
        time.sleep(self.ms / 1000)
