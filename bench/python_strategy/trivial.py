"""The benchmark's trivial Python strategy: a signal every n-th tick of an
instrument, alternating BUY and SELL, exactly what the C++ every_nth does
(so that the two runtimes do the same work beside each other)."""

from tp_strategy import BUY, SELL, Strategy


class EveryNth(Strategy):
    def on_start(self):
        self.n = self.ctx.params.integer("n", 100)
        self.count = {}
        self.buy = {}
        self.emit = self.ctx.emit

    def on_tick(self, tick):
        sym = tick.instrument
        c = self.count.get(sym, 0) + 1
        self.count[sym] = c
        if c % self.n == 0:
            buy = self.buy.get(sym, True)
            self.buy[sym] = not buy
            self.emit(sym, BUY if buy else SELL)
