"""Incremental indicators in pure Python with the conventions of the C++
library (strategy/sdk/include/tp/indicators.hpp, docs/INDICATORS.md): each
update O(1) (rolling min/max amortised O(1)), non-finite values ignored by
SMA, EMA and RSI, EMA seeded with the mean of the first n values, Wilder's
RSI = 100 g/(g+l) and 100 when the average loss is 0 (a flat series too),
rescaled before its averages go subnormal. Tested against the same vectors
as the C++ (tests/python_strategy/test_indicators.py)."""

import math
from collections import deque

_isfinite = math.isfinite


class Sma:
    """Mean of the last `window` values; Neumaier-compensated running sum."""

    __slots__ = ("window", "_ring", "_head", "_count", "_sum", "_comp")

    def __init__(self, window: int):
        if window < 1:
            raise ValueError("SMA window must be >= 1")
        self.window = window
        self._ring = [0.0] * window
        self._head = 0
        self._count = 0
        self._sum = 0.0
        self._comp = 0.0

    def _accumulate(self, x):
        s = self._sum
        t = s + x
        if abs(s) >= abs(x):
            self._comp += (s - t) + x
        else:
            self._comp += (x - t) + s
        self._sum = t

    def update(self, x: float):
        if not _isfinite(x):
            return
        if self._count == self.window:
            self._accumulate(-self._ring[self._head])
        else:
            self._count += 1
        self._accumulate(x)
        self._ring[self._head] = x
        self._head = 0 if self._head + 1 == self.window else self._head + 1

    def ready(self) -> bool:
        return self._count >= self.window

    def value(self) -> float:
        return 0.0 if self._count == 0 else (self._sum + self._comp) / self._count


class Ema:
    """alpha = 2/(n+1), seeded with the plain mean of the first n values;
    before that, the running mean."""

    __slots__ = ("n", "alpha", "_count", "_seed_sum", "_value")

    def __init__(self, n: int):
        if n < 1:
            raise ValueError("EMA length must be >= 1")
        self.n = n
        self.alpha = 2.0 / (n + 1.0)
        self._count = 0
        self._seed_sum = 0.0
        self._value = 0.0

    def update(self, x: float):
        if not _isfinite(x):
            return
        if self._count < self.n:
            self._count += 1
            self._seed_sum += x
            self._value = self._seed_sum / self._count
            return
        self._value += self.alpha * (x - self._value)

    def ready(self) -> bool:
        return self._count >= self.n

    def value(self) -> float:
        return self._value


_RSI_FLOOR = 2.0 ** -600
_RSI_SCALE = 2.0 ** 300


class Rsi:
    """Wilder's RSI over `period` changes; ready after period+1 prices."""

    __slots__ = ("period", "_have_last", "_last", "_changes", "_gain", "_loss")

    def __init__(self, period: int):
        if period < 1:
            raise ValueError("RSI period must be >= 1")
        self.period = period
        self._have_last = False
        self._last = 0.0
        self._changes = 0
        self._gain = 0.0  # during warm-up: the sum of the gains so far
        self._loss = 0.0

    def update(self, price: float):
        if not _isfinite(price):
            return
        if not self._have_last:
            self._have_last = True
            self._last = price
            return
        change = price - self._last
        self._last = price
        gain = change if change > 0.0 else 0.0
        loss = -change if change < 0.0 else 0.0
        n = float(self.period)
        if self._changes < self.period:
            self._gain += gain
            self._loss += loss
            self._changes += 1
            if self._changes == self.period:
                self._gain /= n
                self._loss /= n
            return
        self._gain = (self._gain * (n - 1.0) + gain) / n
        self._loss = (self._loss * (n - 1.0) + loss) / n
        # Exact power-of-two rescale before both go subnormal on a flat series.
        if self._gain < _RSI_FLOOR and self._loss < _RSI_FLOOR:
            self._gain *= _RSI_SCALE
            self._loss *= _RSI_SCALE

    def ready(self) -> bool:
        return self._changes >= self.period

    def value(self) -> float:
        if self._loss == 0.0:
            return 100.0
        return 100.0 * self._gain / (self._gain + self._loss)


class _RollingExtreme:
    __slots__ = ("window", "_seen", "_deque")

    def __init__(self, window: int):
        if window < 1:
            raise ValueError("rolling window must be >= 1")
        self.window = window
        self._seen = 0
        self._deque = deque()  # (index, value), monotonic

    def _evicts(self, new, old):
        raise NotImplementedError

    def update(self, x: float):
        d = self._deque
        while d and self._evicts(x, d[-1][1]):
            d.pop()
        d.append((self._seen, x))
        self._seen += 1
        if self._seen > self.window:
            oldest = self._seen - self.window
            while d and d[0][0] < oldest:
                d.popleft()

    def ready(self) -> bool:
        return self._seen >= self.window

    def value(self) -> float:
        return self._deque[0][1] if self._deque else 0.0


class RollingMin(_RollingExtreme):
    """Lowest of the last `window` values."""

    __slots__ = ()

    def _evicts(self, new, old):
        return new <= old


class RollingMax(_RollingExtreme):
    """Highest of the last `window` values."""

    __slots__ = ()

    def _evicts(self, new, old):
        return new >= old
