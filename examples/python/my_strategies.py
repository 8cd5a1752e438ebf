"""An example Python strategy: a moving-average crossover that emits a
signal each time the fast SMA of the mid crosses the slow one. Run it as a
group of the deployment file (docs/STRATEGIES.md):

    [[strategy.groups]]
    name = "cross"
    kind = "python"
    entry = "my_strategies:Cross"
    python_path = "examples/python"
    [strategy.groups.params]
    fast = 5
    slow = 20
"""

from tp_strategy import BUY, INFO, RESTARTED, SELL, WARN, Sma, Strategy


class Cross(Strategy):
    def on_start(self):
        # Read every parameter here: a key no getter reads refuses the start.
        p = self.ctx.params
        self.fast_n = p.integer("fast", 5)
        self.slow_n = p.integer("slow", 20)
        p.require(self.fast_n >= 1, "fast", ">= 1")
        p.require(self.slow_n > self.fast_n, "slow", "> fast")
        self.avg = {s: (Sma(self.fast_n), Sma(self.slow_n)) for s in self.ctx.instruments}
        self.side = {}  # instrument -> the side the averages were on at the last tick
        self.ctx.every(10_000, self.log_positions)

    def on_tick(self, tick):
        fast, slow = self.avg[tick.instrument]
        fast.update(tick.mid())
        slow.update(tick.mid())
        if not slow.ready() or fast.value() == slow.value():
            return
        side = BUY if fast.value() > slow.value() else SELL
        before = self.side.get(tick.instrument)
        self.side[tick.instrument] = side
        if before is not None and before != side:
            self.ctx.emit(tick.instrument, side)  # the signal id, or "" when refused

    def on_feed(self, event):
        # A restarted feed starts a new price series: averages spanning it
        # would cross where the prices never did.
        if event.kind == RESTARTED and event.instrument in self.avg:
            self.avg[event.instrument] = (Sma(self.fast_n), Sma(self.slow_n))
            self.side.pop(event.instrument, None)

    def on_order(self, update):
        if update.refused:
            self.ctx.log(WARN, f"{update.signal_id} refused: {update.reason}")

    def log_positions(self):
        self.ctx.log(INFO, "positions " + ", ".join(
            f"{s} {self.ctx.position(s):+g}" for s in self.ctx.instruments))
