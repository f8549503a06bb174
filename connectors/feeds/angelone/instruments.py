"""The Angel One instrument master (``OpenAPIScripMaster.json``) indexed by token.

All master fields are strings; ``strike`` and ``tick_size`` are in rupees × 100, i.e. paise
(``"2350000.000000"`` = ₹23,500; ``"5.000000"`` = ₹0.05), which is exactly what
``operators.events.Instrument`` wants. Only index, index/stock option and future rows are
kept; equities and other segments are skipped.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import msgspec
import requests

from connectors.feeds.angelone.errors import AngelOneError, InstrumentNotFoundError
from connectors.feeds.angelone.packets import EXCHANGE_TYPE_BY_SEGMENT
from operators.events import Instrument, InstrumentKind

log = logging.getLogger(__name__)

# Index feed tokens on exchange type 1 (NSE_CM), used when the master has no index row.
INDEX_TOKENS: dict[str, str] = {"NIFTY": "26000", "BANKNIFTY": "26009"}
_OPTION_TYPES = frozenset({"OPTIDX", "OPTSTK"})
_FUTURE_TYPES = frozenset({"FUTIDX", "FUTSTK"})


def _paise(text: str) -> int:
    try:
        value = Decimal(text or "0")
    except InvalidOperation as exc:
        msg = f"not a number: {text!r}"
        raise ValueError(msg) from exc
    return max(int(value.to_integral_value()), 0)


def _expiry(text: str) -> date | None:
    return datetime.strptime(text, "%d%b%Y").date() if text else None  # noqa: DTZ007 - a date


def row_to_instrument(row: Mapping[str, str]) -> Instrument | None:
    """Convert one master row; ``None`` for rows scalpflow does not trade or reference."""
    itype = row.get("instrumenttype", "")
    symbol = row.get("symbol", "")
    name = row.get("name", "")
    kind: InstrumentKind
    if itype in _OPTION_TYPES:
        if symbol.endswith("CE"):
            kind = "CE"
        elif symbol.endswith("PE"):
            kind = "PE"
        else:
            return None
    elif itype in _FUTURE_TYPES:
        kind = "FUT"
    elif itype == "AMXIDX":
        kind = "INDEX"
    else:
        return None
    return Instrument(
        token=row["token"],
        symbol=symbol,
        underlying=name,
        kind=kind,
        exchange=row.get("exch_seg", "NFO"),
        strike=_paise(row.get("strike", "0")) if kind in ("CE", "PE") else 0,
        expiry=_expiry(row.get("expiry", "")) if kind != "INDEX" else None,
        lot_size=max(int(Decimal(row.get("lotsize") or "1")), 1),
        tick_size=_paise(row.get("tick_size") or "5") or 5,
    )


class InstrumentMaster:
    """Instruments by token, plus option lookups by (underlying, expiry, strike, type)."""

    def __init__(self, rows: Iterable[Mapping[str, str]]) -> None:
        self.by_token: dict[str, Instrument] = {}
        self._options: dict[tuple[str, date, int, str], Instrument] = {}
        self._expiries: dict[str, set[date]] = defaultdict(set)
        self._index: dict[str, Instrument] = {}
        skipped = 0
        for row in rows:
            try:
                inst = row_to_instrument(row)
            except (KeyError, ValueError):
                skipped += 1
                continue
            if inst is None:
                continue
            self.by_token[inst.token] = inst
            if inst.is_option and inst.expiry is not None:
                self._options[(inst.underlying, inst.expiry, inst.strike, inst.kind)] = inst
                self._expiries[inst.underlying].add(inst.expiry)
            elif inst.kind == "INDEX" and inst.exchange == "NSE":
                self._index.setdefault(inst.underlying, inst)
        if skipped:
            log.warning("instrument master: skipped %d malformed rows", skipped)

    def __len__(self) -> int:
        return len(self.by_token)

    # ---------------------------------------------------------------------------- loading
    @classmethod
    def from_json(cls, data: bytes) -> InstrumentMaster:
        try:
            rows = msgspec.json.decode(data, type=list[dict[str, str | int | float | None]])
        except msgspec.DecodeError as exc:
            msg = f"instrument master is not a JSON array of objects: {exc}"
            raise AngelOneError(msg) from exc
        return cls({k: "" if v is None else str(v) for k, v in r.items()} for r in rows)

    @classmethod
    def from_file(cls, path: str | Path) -> InstrumentMaster:
        return cls.from_json(Path(path).read_bytes())

    @classmethod
    def load(
        cls, url: str, cache_path: str | Path | None = None, *, timeout_s: float = 60.0
    ) -> InstrumentMaster:
        """Download the master (saving it to ``cache_path``); fall back to the cache on error."""
        try:
            response = requests.get(url, timeout=timeout_s)
            response.raise_for_status()
            data = response.content
            master = cls.from_json(data)
        except (requests.RequestException, AngelOneError) as exc:
            if cache_path is not None and Path(cache_path).exists():
                log.warning("instrument master download failed (%s); using cache", exc)
                return cls.from_file(cache_path)
            msg = f"cannot load the instrument master from {url}: {exc}"
            raise AngelOneError(msg) from exc
        if cache_path is not None:
            _atomic_write(Path(cache_path), data)
        return master

    # ---------------------------------------------------------------------------- lookups
    def get(self, token: str) -> Instrument:
        try:
            return self.by_token[token]
        except KeyError:
            msg = f"token {token} is not in the instrument master"
            raise InstrumentNotFoundError(msg) from None

    def underlying_of(self, token: str) -> str:
        """The underlying an option or future routes to (the strategy stage's key)."""
        return self.get(token).underlying

    def index(self, underlying: str) -> Instrument:
        """The index instrument (NSE cash segment) whose ticks price ``underlying``'s options."""
        if underlying in self._index:
            return self._index[underlying]
        if underlying in INDEX_TOKENS:
            return Instrument(
                token=INDEX_TOKENS[underlying],
                symbol=underlying,
                underlying=underlying,
                kind="INDEX",
                exchange="NSE",
            )
        msg = f"no index instrument for {underlying}"
        raise InstrumentNotFoundError(msg)

    def expiries(self, underlying: str) -> list[date]:
        return sorted(self._expiries.get(underlying, ()))

    def resolve_expiry(self, underlying: str, spec: str, today: date) -> date:
        """``next`` = nearest expiry on/after ``today``; ``following`` = the one after;
        or an ISO date that must be a listed expiry."""
        upcoming = [d for d in self.expiries(underlying) if d >= today]
        if spec in ("next", "following"):
            index = 0 if spec == "next" else 1
            if len(upcoming) <= index:
                msg = f"no {spec} expiry for {underlying} on/after {today}"
                raise InstrumentNotFoundError(msg)
            return upcoming[index]
        try:
            wanted = date.fromisoformat(spec)
        except ValueError as exc:
            msg = f"expiry must be next, following or YYYY-MM-DD, got {spec!r}"
            raise ValueError(msg) from exc
        if wanted not in self._expiries.get(underlying, ()):
            msg = f"{underlying} has no expiry on {wanted}"
            raise InstrumentNotFoundError(msg)
        return wanted

    def option(self, underlying: str, expiry: date, strike: int, kind: str) -> Instrument:
        """The option with ``strike`` in paise and ``kind`` CE or PE."""
        try:
            return self._options[(underlying, expiry, strike, kind)]
        except KeyError:
            msg = f"no {underlying} {expiry} {strike / 100:g} {kind} in the master"
            raise InstrumentNotFoundError(msg) from None

    def strikes(self, underlying: str, expiry: date) -> list[int]:
        return sorted({k[2] for k in self._options if k[0] == underlying and k[1] == expiry})

    def chain(
        self, underlying: str, expiry: date, spot_paise: int, strikes_each_side: int
    ) -> list[Instrument]:
        """CE and PE of the ATM strike and ``strikes_each_side`` strikes above and below."""
        strikes = self.strikes(underlying, expiry)
        if not strikes:
            msg = f"no {underlying} options expiring {expiry}"
            raise InstrumentNotFoundError(msg)
        atm = min(range(len(strikes)), key=lambda i: (abs(strikes[i] - spot_paise), strikes[i]))
        lo = max(atm - strikes_each_side, 0)
        chosen = strikes[lo : atm + strikes_each_side + 1]
        return [
            self._options[(underlying, expiry, s, kind)]
            for s in chosen
            for kind in ("CE", "PE")
            if (underlying, expiry, s, kind) in self._options
        ]


def exchange_type(instrument: Instrument) -> int:
    """SmartWebSocketV2 exchange type of an instrument (NSE 1, NFO 2, …)."""
    try:
        return EXCHANGE_TYPE_BY_SEGMENT[instrument.exchange]
    except KeyError:
        msg = f"no websocket exchange type for segment {instrument.exchange}"
        raise AngelOneError(msg) from None


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)
