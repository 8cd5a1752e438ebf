"""A Python strategy for the supervisor's groups test: every n-th tick of an
instrument a signal, alternating BUY and SELL (the C++ every_nth's rule)."""

from tp_strategy import BUY, SELL, Strategy


class EveryNth(Strategy):
    def on_start(self):
        self.n = self.ctx.params.integer("n", 100)
        self.count = {}
        self.side = {}

    def on_tick(self, tick):
        c = self.count.get(tick.instrument, 0) + 1
        self.count[tick.instrument] = c
        if c % self.n == 0:
            side = self.side.get(tick.instrument, BUY)
            if self.ctx.emit(tick.instrument, side):
                self.side[tick.instrument] = SELL if side == BUY else BUY
