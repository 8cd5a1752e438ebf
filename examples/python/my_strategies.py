"""Example Python strategies: Cross, a moving-average crossover that emits
a signal each time the fast SMA of the mid crosses the slow one (market
orders, or whatever the group's order settings say), and PatientCross, the
same crossings traded with limit orders that rest and are canceled when they
have not filled in time. Run one as a group of the deployment file
(docs/STRATEGIES.md):

    [[strategy.groups]]
    name = "cross"
    kind = "python"
    entry = "my_strategies:Cross"      # or my_strategies:PatientCross
    python_path = "examples/python"
    [strategy.groups.params]
    fast = 5
    slow = 20
    # patience_ms = 3000               # PatientCross only (default: the group's
    #                                  # cancel_after_ms, else 2000)
"""

from tp_strategy import BUY, FILLED, GTC, INFO, LIMIT, RESTARTED, SELL, WARN, Sma, Strategy

NS_PER_MS = 1_000_000


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
            self.trade(tick, side)

    def trade(self, tick, side):
        # The group's order terms (market IOC unless its settings say otherwise).
        return self.ctx.emit(tick.instrument, side)  # the signal id, or "" when refused

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


class PatientCross(Cross):
    """Cross's signals as limit orders at the mid, inside the spread: cheaper
    than crossing it, but they fill only if the market comes to them. Good
    till canceled, and canceled here when still open `patience_ms` after
    they were sent. (A group can get limit orders without code, with
    order_type = "limit", time_in_force and limit_offset_bps; this shows the
    per-signal terms and ctx.cancel.)"""

    def on_start(self):
        super().on_start()
        p = self.ctx.params
        self.patience_ms = p.integer("patience_ms", self.ctx.order_settings["cancel_after_ms"] or 2000)
        p.require(self.patience_ms > 0, "patience_ms", "> 0")

    def trade(self, tick, side):
        sid = self.ctx.emit(tick.instrument, side, order_type=LIMIT, limit_price=tick.mid(), time_in_force=GTC)
        if sid:
            self.ctx.at(self.ctx.now_ns() + self.patience_ms * NS_PER_MS, lambda: self.lose_patience(sid))
        return sid

    def lose_patience(self, sid):
        # False when the order is final already (filled, refused...). True: the
        # cancel is on its way; the outcome comes to on_order, CANCELED (with
        # what filled before) or the status the order reached first.
        if self.ctx.cancel(sid, f"not filled within {self.patience_ms} ms"):
            self.ctx.log(INFO, f"{sid}: canceling")

    def on_order(self, update):
        super().on_order(update)
        if update.final and update.status != FILLED and not update.refused:
            self.ctx.log(INFO, f"{update.signal_id} {update.status_name}: filled {update.filled_quantity:g} of "
                               f"{update.quantity:g}")
