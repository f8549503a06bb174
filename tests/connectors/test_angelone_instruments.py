"""Instrument master: conversion to Instrument (paise), lookups, chain, URL + cache loading."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from connectors.feeds.angelone.errors import AngelOneError, InstrumentNotFoundError
from connectors.feeds.angelone.instruments import InstrumentMaster, exchange_type, row_to_instrument
from tests.fake_angelone.fixtures import *  # noqa: F403
from tests.fake_angelone.server import FakeAngelOne, sample_master

EXP = date(2026, 7, 28)


@pytest.fixture(scope="module")
def master() -> InstrumentMaster:
    return InstrumentMaster(sample_master())


def test_option_row_converts_strike_and_tick_size_to_paise() -> None:
    row = {
        "token": "43650",
        "symbol": "NIFTY28JUL2623500CE",
        "name": "NIFTY",
        "expiry": "28JUL2026",
        "strike": "2350000.000000",
        "lotsize": "65",
        "instrumenttype": "OPTIDX",
        "exch_seg": "NFO",
        "tick_size": "5.000000",
    }
    inst = row_to_instrument(row)
    assert inst is not None
    assert (inst.kind, inst.underlying, inst.strike, inst.tick_size, inst.lot_size) == (
        "CE",
        "NIFTY",
        2_350_000,
        5,
        65,
    )
    assert inst.strike / 100 == 23500
    assert inst.expiry == EXP
    assert exchange_type(inst) == 2


def test_equities_are_skipped_and_indices_kept(master: InstrumentMaster) -> None:
    assert "3045" not in master.by_token
    index = master.index("NIFTY")
    assert (index.token, index.kind, index.exchange) == ("26000", "INDEX", "NSE")
    assert exchange_type(index) == 1


def test_lookup_by_expiry_strike_type_and_underlying_mapping(master: InstrumentMaster) -> None:
    ce = master.option("NIFTY", EXP, 2_350_000, "CE")
    pe = master.option("NIFTY", EXP, 2_350_000, "PE")
    assert ce.symbol == "NIFTY28JUL2623500CE"
    assert pe.symbol == "NIFTY28JUL2623500PE"
    assert master.underlying_of(ce.token) == "NIFTY"
    bank = master.option("BANKNIFTY", EXP, 5_010_000, "PE")
    assert master.underlying_of(bank.token) == "BANKNIFTY"
    assert bank.lot_size == 30
    with pytest.raises(InstrumentNotFoundError):
        master.option("NIFTY", EXP, 2_350_100, "CE")


def test_chain_is_atm_plus_minus_n_strikes(master: InstrumentMaster) -> None:
    chain = master.chain("NIFTY", EXP, spot_paise=2_351_235, strikes_each_side=2)
    strikes = sorted({i.strike for i in chain})
    assert strikes == [2_340_000, 2_345_000, 2_350_000, 2_355_000, 2_360_000]
    assert len(chain) == 10
    assert {i.kind for i in chain} == {"CE", "PE"}


def test_resolve_expiry(master: InstrumentMaster) -> None:
    assert master.resolve_expiry("NIFTY", "next", date(2026, 7, 20)) == EXP
    assert master.resolve_expiry("NIFTY", "next", date(2026, 7, 29)) == date(2026, 8, 4)
    assert master.resolve_expiry("NIFTY", "following", date(2026, 7, 20)) == date(2026, 8, 4)
    assert master.resolve_expiry("NIFTY", "2026-08-04", date(2026, 7, 20)) == date(2026, 8, 4)
    with pytest.raises(InstrumentNotFoundError):
        master.resolve_expiry("BANKNIFTY", "next", date(2026, 7, 29))


def test_load_from_url_writes_cache_and_falls_back_to_it(
    fake_angelone: FakeAngelOne, tmp_path: Path
) -> None:
    cache = tmp_path / "master.json"
    loaded = InstrumentMaster.load(fake_angelone.master_url, cache)
    assert len(loaded) == len(InstrumentMaster(json.loads(cache.read_text())))
    assert "26000" in loaded.by_token
    dead_url = "http://127.0.0.1:9/none.json"  # discard port: nothing listens
    assert len(InstrumentMaster.load(dead_url, cache, timeout_s=2)) == len(loaded)
    with pytest.raises(AngelOneError, match="cannot load"):
        InstrumentMaster.load(dead_url, tmp_path / "absent.json", timeout_s=2)


def test_feed_subscriptions_are_the_index_and_the_atm_chain(
    fake_angelone: FakeAngelOne, tmp_path: Path
) -> None:
    from flows.cli.angelone import build_subscriptions
    from tests.fake_angelone.fixtures import logged_in

    master = InstrumentMaster(fake_angelone.master)
    session = logged_in(fake_angelone, tmp_path)
    (sub,) = build_subscriptions(master, session, "NIFTY", 2, "next", date(2026, 7, 20))
    assert sub.mode == 3
    assert sub.tokens[1] == ("26000",)
    options = [master.get(t) for t in sub.tokens[2]]
    assert sorted({o.strike for o in options}) == [
        2_340_000,
        2_345_000,
        2_350_000,
        2_355_000,
        2_360_000,
    ]
    assert {o.expiry for o in options} == {EXP}
    assert len(options) == 10
