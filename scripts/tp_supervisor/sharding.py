"""Sharding: which strategy instance trades which instrument. Must equal
common/include/common/sharding.hpp (tp::fnv1a64, tp::shard_of,
tp::instruments_for_shard): FNV-1a 64 of the symbol's bytes, modulo the count."""


def fnv1a64(text: str) -> int:
    h = 14695981039346656037
    for byte in text.encode("utf-8"):
        h ^= byte
        h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def shard_of(instrument: str, shards: int) -> int:
    return 0 if shards == 0 else fnv1a64(instrument) % shards


def instruments_for_shard(instruments, shard: int, shards: int) -> list:
    return [s for s in instruments if shard_of(s, shards) == shard]
