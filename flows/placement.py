"""Which Bytewax worker runs which key, chosen rather than left to the hash (issue 19, item 4).

Bytewax 0.21.1 sends a stateful step's item to worker ``siphash13(key) % workers``
(``src/operators.rs``: ``BuildHasherDefault<DefaultHasher>`` over the ``StateKey`` string,
then ``src/timely.rs`` ``PartitionOp``: the hash modulo the number of workers, as an index into
the sorted worker list). Rust's ``DefaultHasher`` is SipHash-1-3 with zero keys, and a ``str``
hashes as its bytes then ``0xff``, so the worker of a key can be computed here, and a key can be
*chosen* so that it lands on a given worker: ``NIFTY|w1`` (plus ``~n`` when the plain suffix
hashes elsewhere). With that the pipeline co-locates its stages: a source partition's parse
step and its tokens' market stage run on the worker that reads the partition, so a tick
crosses processes only on its way to its underlying's strategy stage (and, for an account on
another worker, once more as that account's copy).

A partitioned source's partitions are read by the worker Bytewax makes their "primary"
(``src/timely.rs`` ``calc_primaries``): when every worker lists every partition (Kafka and the
in-memory benchmark source do), the partitions in sorted key order go round-robin to workers
0, 1, ... (``source_worker``). ``tests/flows/test_placement.py`` checks all of this against a
real multi-worker flow, so an upgrade of Bytewax that changes either rule fails there.

With one worker every key is its plain name, as before (recovery stores unchanged). A store
is stamped with its process count (``flows.runtime.recovery``), so a run never resumes keys
placed for another worker count: it refuses with the store's message.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

_MASK = (1 << 64) - 1


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & _MASK


def siphash13(data: bytes, k0: int = 0, k1: int = 0) -> int:
    """SipHash-1-3 (Rust's ``DefaultHasher``) of ``data`` as an unsigned 64-bit integer."""
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573

    def rnd(v0: int, v1: int, v2: int, v3: int) -> tuple[int, int, int, int]:
        v0 = (v0 + v1) & _MASK
        v1 = _rotl(v1, 13) ^ v0
        v0 = _rotl(v0, 32)
        v2 = (v2 + v3) & _MASK
        v3 = _rotl(v3, 16) ^ v2
        v0 = (v0 + v3) & _MASK
        v3 = _rotl(v3, 21) ^ v0
        v2 = (v2 + v1) & _MASK
        v1 = _rotl(v1, 17) ^ v2
        v2 = _rotl(v2, 32)
        return v0, v1, v2, v3

    n = len(data)
    end = n - n % 8
    for i in range(0, end, 8):
        m = int.from_bytes(data[i : i + 8], "little")
        v3 ^= m
        v0, v1, v2, v3 = rnd(v0, v1, v2, v3)
        v0 ^= m
    last = ((n & 0xFF) << 56) | int.from_bytes(data[end:], "little")
    v3 ^= last
    v0, v1, v2, v3 = rnd(v0, v1, v2, v3)
    v0 ^= last
    v2 ^= 0xFF
    for _ in range(3):
        v0, v1, v2, v3 = rnd(v0, v1, v2, v3)
    return v0 ^ v1 ^ v2 ^ v3


@functools.lru_cache(maxsize=65536)
def key_worker(key: str, workers: int) -> int:
    """The worker Bytewax 0.21.1 routes a stateful step's ``key`` to."""
    return siphash13(key.encode() + b"\xff") % workers


@functools.lru_cache(maxsize=65536)
def route_key(name: str, worker: int, workers: int) -> str:
    """A key that keeps ``name`` readable and lands on ``worker``: ``name`` itself with one
    worker, else ``name|w<worker>`` (``name|w<worker>~<n>`` for the first ``n`` that hashes
    there; about ``workers`` tries)."""
    if workers == 1:
        return name
    if not 0 <= worker < workers:
        msg = f"worker {worker} is not one of {workers} workers"
        raise ValueError(msg)
    base = f"{name}|w{worker}"
    key, n = base, 0
    while key_worker(key, workers) != worker:
        n += 1
        key = f"{base}~{n}"
    return key


def name_of(key: str) -> str:
    """The name a placed key stands for (``NIFTY|w1~3`` → ``NIFTY``)."""
    return key.partition("|w")[0]


def source_worker(partitions: Iterable[str], workers: int) -> dict[str, int]:
    """Which worker reads each partition of a source every worker lists in full: Bytewax's
    ``calc_primaries`` gives the partitions, in sorted key order, round-robin to the workers."""
    return {p: i % workers for i, p in enumerate(sorted(partitions))}


#: A strategy stage's cost against an account stage's (measured with 3 underlyings × 4
#: accounts on 2 processes: the worker with two strategy stages used ~4 CPU s more of ~30;
#: an underlying's stage solves IV and Greeks on every option tick)
UNDERLYING_WEIGHT = 2.0


def _spread(
    weighted: Sequence[tuple[str, float]], workers: int, load: list[float]
) -> dict[str, int]:
    """Each name, in order, to the least loaded worker so far (ties: the lowest index)."""
    out = {}
    for name, weight in weighted:
        worker = min(range(workers), key=lambda w: (load[w], w))
        load[worker] += weight
        out[name] = worker
    return out


@dataclass(frozen=True)
class Placement:
    """Where each stage's keys run with ``workers`` workers.

    ``parts``: the source's partition names, as every worker lists them (Kafka:
    ``"<partition>-<topic>"``; the in-memory benchmark: ``"<partition>"``); underlyings and
    accounts go, in that order, each to the least loaded worker so far (an underlying weighing
    ``UNDERLYING_WEIGHT`` accounts), so the busy keys even out over the workers.
    """

    workers: int = 1
    parts: Sequence[str] = ()
    underlyings: Sequence[str] = ()
    accounts: Sequence[str] = ()
    _source: dict[int, int] = field(init=False, repr=False, compare=False)
    _underlying: dict[str, str] = field(init=False, repr=False, compare=False)
    _account: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.workers < 1:
            msg = f"workers must be >= 1, got {self.workers}"
            raise ValueError(msg)
        by_name = source_worker(self.parts, self.workers)
        source = {int(p.split("-", 1)[0]): w for p, w in by_name.items()}
        object.__setattr__(self, "_source", source)
        units = sorted(set(self.underlyings))
        load = [0.0] * self.workers
        spread_u = _spread([(u, UNDERLYING_WEIGHT) for u in units], self.workers, load)
        accounts = list(dict.fromkeys(self.accounts))
        spread_a = _spread([(a, 1.0) for a in accounts], self.workers, load)
        object.__setattr__(
            self, "_underlying", {u: route_key(u, w, self.workers) for u, w in spread_u.items()}
        )
        object.__setattr__(
            self, "_account", {a: route_key(a, w, self.workers) for a, w in spread_a.items()}
        )

    @property
    def placed(self) -> bool:
        """False with one worker: every key is its plain name."""
        return self.workers > 1

    def partition_key(self, partition: int) -> str:
        """The parse step's key of a source partition: on the worker that reads it."""
        name = str(partition)
        worker = self._source.get(partition)
        return name if worker is None else route_key(name, worker, self.workers)

    def source_worker(self, partition: int) -> int | None:
        """The worker that reads Kafka partition ``partition`` (None: not a known one)."""
        return self._source.get(partition)

    def token_key(self, token: str, partition: int | None) -> str:
        """A token's market-stage key: next to its partition's parse step (its plain token
        when the partition is not known, e.g. a replay)."""
        worker = None if partition is None else self._source.get(partition)
        return token if worker is None else route_key(token, worker, self.workers)

    def underlying_key(self, underlying: str) -> str:
        return self._underlying.get(underlying, underlying)

    def account_key(self, account: str) -> str:
        """An account's stage key: with several workers the *group* of the accounts that
        run on its worker (``accounts|w1``), one state holding each of them, so a tick is
        shipped to a worker once, not once per account there."""
        key = self._account.get(account)
        if key is None or not self.placed:
            return account
        return route_key("accounts", key_worker(key, self.workers), self.workers)

    def workers_of(self) -> Mapping[str, int]:
        """Every placed underlying and account with its worker (for logs and RESULTS)."""
        keys = {**self._underlying, **self._account}
        return {name: key_worker(key, self.workers) for name, key in keys.items()}
