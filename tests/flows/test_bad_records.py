"""The fuzz generator's expected reason codes are what the market stage's checks give, kind by
kind, without Kafka (issue 12; the end-to-end run is tests/integration/test_bad_input.py)."""

from __future__ import annotations

from collections import Counter

from connectors.feeds.synthetic.bad_records import KINDS, mix
from connectors.kafka.replay import ReplayRecord
from flows.market import Plausibility, parse_message
from operators.events import DeadLetter, Tick
from tests.integration.fuzz_session import VALIDATION, session_market


def test_every_bad_kind_gets_its_reason_code_and_good_ticks_pass() -> None:
    market = session_market(minutes=3)
    instruments = {i.token: i for i in market.instruments()}
    records = mix(((m.key, m.value, m.timestamp_ms) for m in market.raw_messages()), 3000, 1)
    plausibility = Plausibility(VALIDATION)
    got: Counter[tuple[str, str]] = Counter()
    for offset, r in enumerate(records):
        raw = ReplayRecord(r.key, r.value, 0, offset, 0, "t")  # type: ignore[arg-type]
        parsed = parse_message(raw, instruments, VALIDATION, plausibility)
        if isinstance(parsed, DeadLetter):
            code = parsed.reason.split(":", 1)[0]
            assert r.expect == code, (r.kind, parsed.reason)
            got[(r.kind, code)] += 1
        else:
            assert r.expect is None, (r.kind, r.value)
    assert {kind for kind, _ in got} == set(KINDS)


class _Broken(Plausibility):
    def check(self, tick: Tick) -> str | None:
        raise ZeroDivisionError("a bug in a check")


def test_a_check_that_raises_dead_letters_the_message_instead_of_stopping_the_flow() -> None:
    market = session_market(minutes=1)
    first = next(iter(market.raw_messages()))
    raw = ReplayRecord(first.key, first.value, 0, 7, 0, "t")
    letter = parse_message(raw, None, VALIDATION, _Broken())
    assert isinstance(letter, DeadLetter)
    assert letter.reason == "INTERNAL_ERROR: ZeroDivisionError: a bug in a check"
    assert (letter.raw, letter.source_offset) == (first.value, 7)
