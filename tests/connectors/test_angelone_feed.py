"""The live feed end to end: real SDK websocket against the fake server, real Kafka."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from prometheus_client import REGISTRY

from connectors.feeds.angelone.feed import AngelOneFeed, FeedConfig, Subscription
from connectors.feeds.angelone.publisher import FeedPublisher
from connectors.feeds.angelone.session import AngelOneSession
from flows.cli.angelone import feed_auth
from operators.events import RiskEvent, Tick
from tests.fake_angelone import (
    Close,
    FakeAngelOne,
    Send,
    SendRaw,
    Silent,
    ltp_packet,
    quote_packet,
    snap_packet,
)
from tests.fake_angelone.fixtures import *  # noqa: F403
from tests.fake_angelone.fixtures import consume, header, logged_in, make_topics, value_of

pytestmark = pytest.mark.kafka
OPT_A, OPT_B, INDEX = "40002", "40003", "26000"
SUBS = [Subscription(mode=3, tokens={2: (OPT_A, OPT_B), 1: (INDEX,)})]


def _now_ms() -> int:
    return int(time.time() * 1000)


class Harness:
    def __init__(
        self, fake: FakeAngelOne, bootstrap: str, tmp_path: Path, data_timeout_s: float = 5.0
    ) -> None:
        self.fake = fake
        self.bootstrap = bootstrap
        self.ticks, self.dlq, self.risk = make_topics(
            bootstrap, "md.ticks", "md.dlq", "risk.events"
        )
        self.session: AngelOneSession = logged_in(fake, tmp_path)
        self.publisher = FeedPublisher(
            bootstrap, ticks_topic=self.ticks, dlq_topic=self.dlq, risk_topic=self.risk
        )
        self.feed = AngelOneFeed(
            FeedConfig(
                ws_url=fake.ws_url,
                data_timeout_s=data_timeout_s,
                backoff_base_s=0.05,
                backoff_cap_s=0.2,
                connect_timeout_s=5,
            ),
            SUBS,
            lambda: feed_auth(self.session),
            self.publisher,
            refresh_auth=self.session.refresh,
        )

    def tick_values(self, count: int, settle: float = 1.0) -> list[Tick]:
        msgs = consume(self.bootstrap, self.ticks, count, settle=settle)
        return [msgspec.json.decode(value_of(m), type=Tick) for m in msgs]


@pytest.fixture
def harness_factory(
    fake_angelone: FakeAngelOne, kafka_bootstrap: str, tmp_path: Path
) -> Iterator[type[Harness]]:
    made: list[Harness] = []

    def make(data_timeout_s: float = 5.0) -> Harness:
        h = Harness(fake_angelone, kafka_bootstrap, tmp_path, data_timeout_s)
        made.append(h)
        return h

    yield make  # type: ignore[misc]
    for h in made:
        h.feed.stop()


def test_normal_stream_publishes_exactly_the_scripted_ticks(
    harness_factory, fake_angelone: FakeAngelOne, kafka_bootstrap: str
) -> None:
    t0 = _now_ms()
    frames = [
        ltp_packet(OPT_A, 12345, t0, seq=1),
        quote_packet(INDEX, 2351235, t0 + 1, exchange_type=1, seq=2, last_qty=0, volume=0),
        snap_packet(
            OPT_A,
            12350,
            t0 + 2,
            seq=3,
            last_qty=65,
            volume=6500,
            oi=130000,
            bids=[(12340, 65, 1), (12335, 130, 2)],
            asks=[(12355, 195, 3)],
            asks_first=True,
        ),
        snap_packet(
            OPT_B,
            8005,
            t0 + 3,
            seq=4,
            last_qty=130,
            volume=1300,
            oi=65000,
            bids=[(8000, 650, 5)],
            asks=[(8010, 65, 1), (8015, 65, 1)],
            asks_first=False,
        ),
    ]
    fake_angelone.ws_script = [[Send(frames)]]
    snap_before = (
        REGISTRY.get_sample_value("scalpflow_angelone_ticks_total", {"mode": "SNAP_QUOTE"}) or 0.0
    )
    lag_before = REGISTRY.get_sample_value("scalpflow_angelone_tick_lag_seconds_count") or 0.0
    h = harness_factory()
    h.feed.start()
    msgs = consume(kafka_bootstrap, h.ticks, 4, settle=1.0)
    assert len(msgs) == 4
    assert (
        REGISTRY.get_sample_value("scalpflow_angelone_ticks_total", {"mode": "SNAP_QUOTE"})
        == snap_before + 2
    )
    assert REGISTRY.get_sample_value("scalpflow_angelone_tick_lag_seconds_count") == (
        lag_before + 4
    )
    ticks = [msgspec.json.decode(value_of(m), type=Tick) for m in msgs]
    assert [m.key() for m in msgs] == [
        OPT_A.encode(),
        INDEX.encode(),
        OPT_A.encode(),
        OPT_B.encode(),
    ]
    assert [m.timestamp()[1] for m in msgs] == [t0, t0 + 1, t0 + 2, t0 + 3]
    assert [int(t.ts_event.timestamp() * 1000) for t in ticks] == [t0, t0 + 1, t0 + 2, t0 + 3]
    assert all(t.ts_event.utcoffset() is not None and t.ts_recv >= t.ts_event for t in ticks)
    assert [t.ltp / 100 for t in ticks] == [123.45, 23512.35, 123.50, 80.05]
    assert [t.exchange for t in ticks] == ["NFO", "NSE", "NFO", "NFO"]
    assert [t.seq for t in ticks] == [1, 2, 3, 4]
    snap_a, snap_b = ticks[2], ticks[3]
    assert (snap_a.bid, snap_a.bid_qty, snap_a.ask, snap_a.ask_qty) == (12340, 65, 12355, 195)
    assert (snap_b.bid, snap_b.bid_qty, snap_b.ask, snap_b.ask_qty) == (8000, 650, 8010, 65)
    assert (snap_a.oi, snap_a.cum_volume, snap_a.last_qty) == (130000, 6500, 65)
    assert h.feed.stats.ticks == 4
    assert h.feed.stats.dead_letters == 0
    assert consume(kafka_bootstrap, h.dlq, 1, timeout=1.0) == []


@pytest.mark.parametrize("abrupt", [False, True])
def test_server_close_reconnects_resubscribes_and_loses_nothing_after(
    harness_factory, fake_angelone: FakeAngelOne, abrupt: bool
) -> None:
    t0 = _now_ms()
    before = [ltp_packet(OPT_A, 100 + i, t0 + i, seq=i) for i in range(5)]
    after = [ltp_packet(OPT_B, 200 + i, t0 + 10 + i, seq=10 + i) for i in range(5)]
    fake_angelone.ws_script = [[Send(before), Close(abrupt=abrupt)], [Send(after)]]
    h = harness_factory()
    h.feed.start()
    ticks = h.tick_values(10)
    assert [t.ltp for t in ticks] == [100, 101, 102, 103, 104, 200, 201, 202, 203, 204]
    conns = fake_angelone.ws_connections
    assert len(conns) >= 2
    for conn in conns[:2]:
        tokens = {
            tok
            for m in conn.subscribe_messages
            for g in m["params"]["tokenList"]
            for tok in g["tokens"]
        }
        assert tokens == {OPT_A, OPT_B, INDEX}
        assert len(conn.subscribe_messages) == 1  # no accumulated duplicates
    assert conns[1].dropped_unsubscribed == 0
    assert h.feed.stats.reconnects >= 1


def test_silent_socket_trips_the_watchdog_then_recovers(
    harness_factory, fake_angelone: FakeAngelOne, kafka_bootstrap: str
) -> None:
    t0 = _now_ms()
    fake_angelone.ws_script = [
        [Send([ltp_packet(OPT_A, 111, t0)]), Silent()],
        [Send([ltp_packet(OPT_A, 222, t0 + 1)])],
    ]
    h = harness_factory(data_timeout_s=1.0)
    h.feed.start()
    assert [t.ltp for t in h.tick_values(2, settle=0.0)] == [111, 222]
    msgs = consume(kafka_bootstrap, h.risk, 2)
    events = [msgspec.json.decode(value_of(m), type=RiskEvent) for m in msgs]
    assert [e.kind for e in events] == ["FEED_STALLED", "FEED_RECOVERED"]
    assert all(e.account == "*" and m.key() == b"*" for e, m in zip(events, msgs, strict=True))
    assert "open socket" in events[0].detail
    assert len(fake_angelone.ws_connections) >= 2
    assert fake_angelone.ws_connections[1].subscribe_messages
    assert h.feed.stats.stalls == 1
    assert h.feed.stats.recoveries == 1


def test_malformed_frames_go_to_the_dlq_and_the_feed_keeps_running(
    harness_factory, fake_angelone: FakeAngelOne, kafka_bootstrap: str
) -> None:
    t0 = _now_ms()
    short = ltp_packet(OPT_A, 1, t0)[:30]
    bad_mode = b"\x07" + ltp_packet(OPT_B, 1, t0)[1:]
    fake_angelone.ws_script = [
        [
            Send([ltp_packet(OPT_A, 301, t0)]),
            SendRaw([short, bad_mode]),
            Send([ltp_packet(OPT_A, 302, t0 + 1)]),
        ]
    ]
    h = harness_factory(data_timeout_s=60.0)  # only the bad frames may disturb this feed
    h.feed.start()
    assert [t.ltp for t in h.tick_values(2)] == [301, 302]
    dead = consume(kafka_bootstrap, h.dlq, 2, settle=0.5)
    assert [m.value() for m in dead] == [short, bad_mode]
    reasons = [header(m, "reason") for m in dead]
    assert reasons[0].startswith("short packet")
    assert "mode 7" in reasons[1]
    assert [m.key() for m in dead] == [OPT_A.encode(), OPT_B.encode()]
    assert len(fake_angelone.ws_connections) == 1
    assert h.feed.stats.reconnects == 0
    assert h.feed.is_open


def test_rejected_feed_credentials_are_refreshed_not_retried_forever(
    harness_factory, fake_angelone: FakeAngelOne
) -> None:
    t0 = _now_ms()
    fake_angelone.ws_script = [[Send([ltp_packet(OPT_A, 401, t0)])]]
    h = harness_factory()
    fake_angelone.revoke_all_tokens()  # the session's tokens no longer open the socket
    h.feed.start()
    assert [t.ltp for t in h.tick_values(1, settle=0.0)] == [401]
    assert h.feed.stats.auth_refreshes >= 1
    assert fake_angelone.count("login") == 2  # refresh token revoked too → one new login
