"""The binary parser against frames built independently from the documented layout."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.feeds.angelone.errors import PacketDecodeError
from connectors.feeds.angelone.packets import packet_to_tick, parse_packet, peek_token
from tests.fake_angelone.packets import ltp_packet, quote_packet, snap_packet

TS_MS = 1_785_211_200_123  # 2026-07-28 09:30:00.123 IST = 04:00:00.123 UTC
RECV = datetime(2026, 7, 28, 4, 0, 1, tzinfo=UTC)


def test_ltp_packet_becomes_a_tick_in_paise_with_exchange_time() -> None:
    tick = packet_to_tick(parse_packet(ltp_packet("43650", 12345, TS_MS, seq=7)), RECV)
    assert tick.token == "43650"
    assert tick.exchange == "NFO"
    assert tick.ltp == 12345
    assert tick.ltp / 100 == pytest.approx(123.45)
    assert tick.seq == 7
    assert tick.ts_event == datetime(2026, 7, 28, 4, 0, 0, 123000, tzinfo=UTC)
    assert tick.ts_event.tzinfo is not None
    assert tick.ts_recv == RECV
    assert (tick.bid, tick.ask, tick.cum_volume) == (0, 0, 0)


def test_quote_packet_carries_volume_and_last_quantity() -> None:
    frame = quote_packet(
        "26000",
        2351235,
        TS_MS,
        exchange_type=1,
        last_qty=75,
        volume=123456,
        avg=2350000,
        ohlc=(2340000, 2360000, 2330000, 2345000),
    )
    packet = parse_packet(frame)
    assert packet.exchange == "NSE"
    assert (packet.open, packet.high, packet.low, packet.close) == (
        2340000,
        2360000,
        2330000,
        2345000,
    )
    tick = packet_to_tick(packet, RECV)
    assert (tick.ltp, tick.last_qty, tick.cum_volume) == (2351235, 75, 123456)


@pytest.mark.parametrize("asks_first", [True, False])
def test_snap_quote_depth_sides_are_decided_by_price(asks_first: bool) -> None:
    bids = [(12340, 65, 2), (12335, 130, 4), (12330, 65, 1)]
    asks = [(12350, 195, 3), (12355, 65, 1)]
    frame = snap_packet(
        "43650",
        12345,
        TS_MS,
        oi=98765,
        bids=bids,
        asks=asks,
        asks_first=asks_first,
        volume=5000,
        last_qty=65,
    )
    packet = parse_packet(frame)
    assert [lv.price for lv in packet.bids] == [12340, 12335, 12330]
    assert [lv.price for lv in packet.asks] == [12350, 12355]
    tick = packet_to_tick(packet, RECV)
    assert (tick.bid, tick.bid_qty, tick.ask, tick.ask_qty) == (12340, 65, 12350, 195)
    assert tick.bid < tick.ask
    assert tick.oi == 98765


def test_one_sided_book_is_placed_against_the_last_price() -> None:
    only_asks = parse_packet(snap_packet("1", 100, TS_MS, asks=[(105, 10, 1)], asks_first=True))
    assert only_asks.bids == ()
    assert only_asks.asks[0].price == 105
    only_bids = parse_packet(snap_packet("1", 100, TS_MS, bids=[(95, 10, 1)], asks_first=True))
    assert only_bids.asks == ()
    assert only_bids.bids[0].price == 95


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"\x01\x02short", "short packet"),
        (ltp_packet("43650", 1, TS_MS)[:50], "short packet"),
        (quote_packet("43650", 1, TS_MS)[:100], "QUOTE needs 123"),
        (snap_packet("43650", 1, TS_MS)[:300], "SNAP_QUOTE needs 379"),
        (b"\x09" + ltp_packet("43650", 1, TS_MS)[1:], "unsupported subscription mode 9"),
        (ltp_packet("43650", 1, TS_MS, exchange_type=99), "unknown exchange type 99"),
        (ltp_packet("", 1, TS_MS), "token is empty"),
        (ltp_packet("43650", 1, 0), "exchange timestamp 0"),
    ],
)
def test_malformed_frames_raise_with_a_reason(frame: bytes, reason: str) -> None:
    with pytest.raises(PacketDecodeError, match=reason):
        parse_packet(frame)


def test_peek_token_survives_broken_frames() -> None:
    assert peek_token(ltp_packet("43650", 1, TS_MS)[:40]) == "43650"
    assert peek_token(b"\x01") is None


@given(
    token=st.text(alphabet="0123456789", min_size=1, max_size=25),
    ltp=st.integers(min_value=0, max_value=2**62),
    ts=st.integers(min_value=1, max_value=4_102_444_800_000),
    seq=st.integers(min_value=-(2**63), max_value=2**63 - 1),
)
def test_ltp_round_trip(token: str, ltp: int, ts: int, seq: int) -> None:
    packet = parse_packet(ltp_packet(token, ltp, ts, seq=seq))
    assert (packet.token, packet.ltp, packet.exchange_ts_ms, packet.seq) == (token, ltp, ts, seq)
