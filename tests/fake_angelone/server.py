"""A local fake Angel One: SmartAPI REST endpoints and a SmartWebSocketV2 binary feed.

Binds 127.0.0.1 on ephemeral ports only. Faults are scripted:

- REST: ``fail_next(route, fault, times)`` with fault ``rate_limit`` (HTTP 403 plain text
  "exceeding access rate"), ``no_status`` (a refusal body without ``status``),
  ``invalid_totp`` or ``server_error``; wrong credentials or a wrong TOTP fail naturally.
- Websocket: ``ws_script[n]`` is the list of actions for the n-th connection, run once the
  client has subscribed: ``Send`` (frames, delivered only for tokens subscribed on *this*
  connection, like the real server), ``SendRaw`` (delivered as is: malformed/short frames),
  ``Sleep``, ``Close`` (clean close or abrupt abort) and ``Silent`` (hold the socket open and
  send nothing). After its script a connection stays open and silent.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pyotp
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from connectors.feeds.angelone.settings import DEFAULT_CANDLE_MAX_DAYS
from tests.fake_angelone.packets import frame_token, snap_packet

IST = timezone(timedelta(hours=5, minutes=30))
LOGIN = "/rest/auth/angelbroking/user/v1/loginByPassword"
TOKENS = "/rest/auth/angelbroking/jwt/v1/generateTokens"
PROFILE = "/rest/secure/angelbroking/user/v1/getProfile"
CANDLES = "/rest/secure/angelbroking/historical/v1/getCandleData"
LTP = "/rest/secure/angelbroking/order/v1/getLtpData"
MASTER = "/OpenAPI_File/files/OpenAPIScripMaster.json"
ROUTE_NAMES = {
    LOGIN: "login",
    TOKENS: "refresh",
    PROFILE: "profile",
    CANDLES: "candles",
    LTP: "ltp",
    MASTER: "master",
}
# the documented per-request limits, the ones the connector defaults to
CANDLE_MAX_DAYS = DEFAULT_CANDLE_MAX_DAYS
CANDLE_STEP_MIN = {
    "ONE_MINUTE": 1,
    "THREE_MINUTE": 3,
    "FIVE_MINUTE": 5,
    "TEN_MINUTE": 10,
    "FIFTEEN_MINUTE": 15,
    "THIRTY_MINUTE": 30,
    "ONE_HOUR": 60,
}
RATE_LIMIT_BODY = b"Access denied because of exceeding access rate"


# ------------------------------------------------------------------------------ ws actions
@dataclass(frozen=True)
class Send:
    frames: list[bytes]
    gap_s: float = 0.0


@dataclass(frozen=True)
class SendRaw:
    frames: list[bytes]


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Close:
    abrupt: bool = False


@dataclass(frozen=True)
class Silent:
    """Hold the socket open and say nothing (the default after a script ends)."""


@dataclass(frozen=True)
class Stream:
    """Random-walk SNAP_QUOTE ticks for every subscribed token, ``rate_hz`` rounds a second,
    for ``seconds`` (None: until the client leaves). For developers' demos."""

    rate_hz: float = 2.0
    seconds: float | None = None
    seed: int = 7


Action = Send | SendRaw | Sleep | Close | Silent | Stream


@dataclass(frozen=True)
class FakeCredentials:
    api_key: str = "fakeApiKey7Q2w"
    client_code: str = "F1234567"
    mpin: str = "9731"
    totp_secret: str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@dataclass
class WsConnection:
    index: int
    headers: dict[str, str]
    subscribe_messages: list[dict[str, Any]] = field(default_factory=list)
    subscribed: set[tuple[int, str]] = field(default_factory=set)
    frames_sent: int = 0
    dropped_unsubscribed: int = 0
    closed_by_server: bool = False


def fake_candle(token: str, start: datetime) -> tuple[float, float, float, float, int]:
    """Deterministic OHLCV for (token, start): tests recompute it to check what was stored."""
    n = int(start.timestamp() // 60) + int(token)
    base = 100 + (int(token) % 500)
    o = base + (n % 37) * 0.05
    c = base + (n % 41) * 0.05
    h = max(o, c) + 0.25
    lo = min(o, c) - 0.20
    return round(o, 2), round(h, 2), round(lo, 2), round(c, 2), 1000 + n % 997


def _master_row(
    token: str,
    symbol: str,
    name: str,
    kind: str,
    *,
    expiry: date | None = None,
    strike: str = "-1.000000",
    lot: str = "1",
    segment: str = "NFO",
    tick: str = "5.000000",
) -> dict[str, str]:
    """One OpenAPIScripMaster row, every value a string as in the real file."""
    return {
        "token": token,
        "symbol": symbol,
        "name": name,
        "expiry": expiry.strftime("%d%b%Y").upper() if expiry else "",
        "strike": strike,
        "lotsize": lot,
        "instrumenttype": kind,
        "exch_seg": segment,
        "tick_size": tick,
    }


def sample_master(
    spot: dict[str, float] | None = None, expiries: dict[str, list[date]] | None = None
) -> list[dict[str, str]]:
    """A small OpenAPIScripMaster-shaped list: NIFTY/BANKNIFTY indices, options, a future."""
    spot = spot or {"NIFTY": 23512.35, "BANKNIFTY": 50120.0}
    expiries = expiries or {
        "NIFTY": [date(2026, 7, 28), date(2026, 8, 4)],
        "BANKNIFTY": [date(2026, 7, 28)],
    }
    step = {"NIFTY": 50, "BANKNIFTY": 100}
    lot = {"NIFTY": "65", "BANKNIFTY": "30"}
    index: dict[str, Any] = {"strike": "0.000000", "segment": "NSE", "tick": "0.000000"}
    rows = [
        _master_row("26000", "Nifty 50", "NIFTY", "AMXIDX", **index),
        _master_row("26009", "Nifty Bank", "BANKNIFTY", "AMXIDX", **index),
        _master_row("3045", "SBIN-EQ", "SBIN", "", segment="NSE"),
    ]
    token = 40000
    for und, exps in expiries.items():
        atm = round(spot[und] / step[und]) * step[und]
        for exp in exps:
            tag = exp.strftime("%d%b%y").upper()
            rows.append(
                _master_row(
                    str(token),
                    f"{und}{tag}FUT",
                    und,
                    "FUTIDX",
                    expiry=exp,
                    lot=lot[und],
                    tick="10.000000",
                )
            )
            token += 1
            for k in range(-15, 16):
                strike = atm + k * step[und]
                for kind in ("CE", "PE"):
                    rows.append(
                        _master_row(
                            str(token),
                            f"{und}{tag}{strike}{kind}",
                            und,
                            "OPTIDX",
                            expiry=exp,
                            strike=f"{strike * 100:.6f}",
                            lot=lot[und],
                        )
                    )
                    token += 1
    return rows


class FakeAngelOne:
    """Start with ``start()`` (or as a context manager); URLs in ``root_url`` and ``ws_url``."""

    def __init__(
        self,
        credentials: FakeCredentials | None = None,
        master: list[dict[str, str]] | None = None,
        ltp: dict[str, float] | None = None,
    ) -> None:
        self.creds = credentials or FakeCredentials()
        self.master = master if master is not None else sample_master()
        self.ltp = ltp or {"26000": 23512.35, "26009": 50120.0}
        self.ws_script: list[list[Action]] = []
        self.ws_connections: list[WsConnection] = []
        self.requests: list[tuple[str, float, int]] = []  # (route name, monotonic, status)
        self.candle_requests: list[dict[str, Any]] = []
        self.candle_rate_window_s = 0.9
        self.candle_rate_max = 3
        self.candle_rate_rejections = 0
        self._candle_arrivals: list[float] = []
        self._faults: dict[str, deque[str]] = {}
        self._jwts: set[str] = set()
        self._feed_tokens: set[str] = set()
        self._refresh_tokens: set[str] = set()
        self._lock = threading.Lock()
        self._http: ThreadingHTTPServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ws_server: Any = None
        self._ws_stop: asyncio.Event | None = None
        self._threads: list[threading.Thread] = []
        self.http_port = 0
        self.ws_port = 0

    # --------------------------------------------------------------------------- lifecycle
    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/smart-stream"

    @property
    def master_url(self) -> str:
        return f"{self.root_url}{MASTER}"

    def __enter__(self) -> FakeAngelOne:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._http.daemon_threads = True
        self.http_port = self._http.server_address[1]
        http_thread = threading.Thread(
            target=self._http.serve_forever, daemon=True, name="fake-angelone-http"
        )
        http_thread.start()
        ready = threading.Event()
        ws_thread = threading.Thread(
            target=self._run_ws, args=(ready,), daemon=True, name="fake-angelone-ws"
        )
        ws_thread.start()
        if not ready.wait(10):
            msg = "fake websocket server did not start"
            raise RuntimeError(msg)
        self._threads = [http_thread, ws_thread]

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._loop is not None and self._ws_stop is not None:
            self._loop.call_soon_threadsafe(self._ws_stop.set)
        for thread in self._threads:
            thread.join(10)

    # -------------------------------------------------------------------------- scripting
    def fail_next(self, route: str, fault: str, times: int = 1) -> None:
        """Make the next ``times`` calls of ``route`` (login, candles, ...) fail with ``fault``."""
        with self._lock:
            self._faults.setdefault(route, deque()).extend([fault] * times)

    def count(self, route: str, status: int | None = None) -> int:
        with self._lock:
            return sum(
                1 for r, _, s in self.requests if r == route and (status is None or s == status)
            )

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    def _take_fault(self, route: str) -> str | None:
        with self._lock:
            queue = self._faults.get(route)
            return queue.popleft() if queue else None

    def _issue_tokens(self) -> dict[str, str]:
        jwt, refresh, feed = (
            f"eyJ{secrets.token_hex(16)}",
            f"rt{secrets.token_hex(16)}",
            f"ft{secrets.token_hex(12)}",
        )
        with self._lock:
            self._jwts.add(jwt)
            self._refresh_tokens.add(refresh)
            self._feed_tokens.add(feed)
        return {"jwtToken": jwt, "refreshToken": refresh, "feedToken": feed}

    def revoke_all_tokens(self) -> None:
        with self._lock:
            self._jwts.clear()
            self._feed_tokens.clear()
            self._refresh_tokens.clear()

    def _authorised(self, header: str | None) -> bool:
        if not header or not header.startswith("Bearer "):
            return False
        with self._lock:
            return header.removeprefix("Bearer ") in self._jwts

    # ------------------------------------------------------------------------------- REST
    def handle_rest(
        self, method: str, path: str, headers: Any, body: bytes
    ) -> tuple[int, str, bytes]:
        route = ROUTE_NAMES.get(path.split("?", 1)[0])
        if route is None:
            return 404, "application/json", b'{"status": false, "message": "no such route"}'
        status, ctype, payload = self._route(route, headers, body)
        with self._lock:
            self.requests.append((route, time.monotonic(), status))
        return status, ctype, payload

    def _route(self, route: str, headers: Any, body: bytes) -> tuple[int, str, bytes]:
        fault = self._take_fault(route)
        if fault == "rate_limit":
            return 403, "text/plain", RATE_LIMIT_BODY
        if fault == "server_error":
            return 500, "text/plain", b"internal error"
        if fault == "no_status":
            return (
                200,
                "application/json",
                _json({"success": False, "message": "Invalid API Key", "errorCode": "AG8004"}),
            )
        if route == "master":
            return 200, "application/json", _json(self.master)
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            return 400, "application/json", _json({"status": False, "message": "bad json"})
        if route == "login":
            return self._login(headers, params, fault)
        if route == "refresh":
            with self._lock:
                ok = params.get("refreshToken") in self._refresh_tokens
            if not ok:
                return 200, "application/json", _refusal("Invalid Refresh Token", "AB8050")
            return (
                200,
                "application/json",
                _json(
                    {
                        "status": True,
                        "message": "SUCCESS",
                        "errorcode": "",
                        "data": self._issue_tokens(),
                    }
                ),
            )
        if not self._authorised(headers.get("Authorization")):
            return (
                401,
                "application/json",
                _json(
                    {
                        "success": False,
                        "message": "Invalid Token",
                        "errorCode": "AG8001",
                        "data": "",
                    }
                ),
            )
        if route == "profile":
            return (
                200,
                "application/json",
                _ok(
                    {
                        "clientcode": self.creds.client_code,
                        "name": "FAKE USER",
                        "exchanges": ["NSE", "NFO"],
                    }
                ),
            )
        if route == "ltp":
            token = str(params.get("symboltoken"))
            if token not in self.ltp:
                return 200, "application/json", _refusal("Symbol not found", "AB1009")
            return (
                200,
                "application/json",
                _ok(
                    {
                        "exchange": params.get("exchange"),
                        "tradingsymbol": params.get("tradingsymbol"),
                        "symboltoken": token,
                        "ltp": self.ltp[token],
                    }
                ),
            )
        return self._candles(params)

    def _login(
        self, headers: Any, params: dict[str, Any], fault: str | None
    ) -> tuple[int, str, bytes]:
        creds = self.creds
        if headers.get("X-PrivateKey") != creds.api_key:
            return (
                200,
                "application/json",
                _json({"success": False, "message": "Invalid API Key", "errorCode": "AG8004"}),
            )
        if params.get("clientcode") != creds.client_code or params.get("password") != creds.mpin:
            return 200, "application/json", _refusal("Invalid clientcode or password", "AB1007")
        totp_ok = pyotp.TOTP(creds.totp_secret).verify(str(params.get("totp")), valid_window=1)
        if fault == "invalid_totp" or not totp_ok:
            return 200, "application/json", _refusal("Invalid totp", "AB1050")
        return 200, "application/json", _ok(self._issue_tokens())

    def _candles(self, params: dict[str, Any]) -> tuple[int, str, bytes]:
        now = time.monotonic()  # arrival time: processing time must not skew the window
        with self._lock:
            recent = [t for t in self._candle_arrivals if now - t < self.candle_rate_window_s]
            self.candle_requests.append(dict(params))
            if len(recent) >= self.candle_rate_max:
                self.candle_rate_rejections += 1
                return 403, "text/plain", RATE_LIMIT_BODY
            self._candle_arrivals.append(now)
        interval = params.get("interval", "")
        try:
            start = datetime.strptime(params["fromdate"], "%Y-%m-%d %H:%M").replace(tzinfo=IST)
            end = datetime.strptime(params["todate"], "%Y-%m-%d %H:%M").replace(tzinfo=IST)
        except (KeyError, ValueError):
            return 200, "application/json", _refusal("Invalid date format", "AB1004")
        if interval not in CANDLE_MAX_DAYS:
            return 200, "application/json", _refusal("Invalid interval", "AB1004")
        if end < start or (end - start) > timedelta(days=CANDLE_MAX_DAYS[interval]):
            return 200, "application/json", _refusal("Date range exceeds the limit", "AB1004")
        token = str(params.get("symboltoken"))
        rows = [
            [ts.isoformat(), *fake_candle(token, ts)] for ts in _candle_times(start, end, interval)
        ]
        return 200, "application/json", _ok(rows)

    # --------------------------------------------------------------------------- websocket
    def _run_ws(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        loop.run_until_complete(self._ws_main(ready))
        loop.close()

    async def _ws_main(self, ready: threading.Event) -> None:
        self._ws_stop = asyncio.Event()
        async with serve(
            self._ws_handler, "127.0.0.1", 0, process_request=self._ws_check
        ) as server:
            self.ws_port = next(iter(server.sockets)).getsockname()[1]
            ready.set()
            await self._ws_stop.wait()

    def _ws_check(self, connection: ServerConnection, request: Request) -> Response | None:
        h = request.headers
        with self._lock:
            ok = (
                h.get("x-api-key") == self.creds.api_key
                and h.get("x-client-code") == self.creds.client_code
                and h.get("x-feed-token") in self._feed_tokens
            )
        if not (ok and self._authorised(h.get("Authorization"))):
            return connection.respond(HTTPStatus.UNAUTHORIZED, "Invalid headers\n")
        return None

    async def _ws_handler(self, ws: ServerConnection) -> None:
        with self._lock:
            conn = WsConnection(
                index=len(self.ws_connections),
                headers=dict(ws.request.headers) if ws.request else {},
            )
            self.ws_connections.append(conn)
            script = self.ws_script[conn.index] if conn.index < len(self.ws_script) else []
        subscribed = asyncio.Event()
        reader = asyncio.create_task(self._ws_reader(ws, conn, subscribed))
        try:
            await asyncio.wait_for(subscribed.wait(), 10)
            for action in script:
                if isinstance(action, Send):
                    for frame in action.frames:
                        key = frame_token(frame)
                        if key is not None and key in conn.subscribed:
                            await ws.send(frame)
                            conn.frames_sent += 1
                        else:
                            conn.dropped_unsubscribed += 1
                        if action.gap_s:
                            await asyncio.sleep(action.gap_s)
                elif isinstance(action, SendRaw):
                    for frame in action.frames:
                        await ws.send(frame)
                        conn.frames_sent += 1
                elif isinstance(action, Sleep):
                    await asyncio.sleep(action.seconds)
                elif isinstance(action, Close):
                    conn.closed_by_server = True
                    if action.abrupt:
                        ws.transport.abort()
                    else:
                        await ws.close()
                    return
                elif isinstance(action, Silent):
                    break
                elif isinstance(action, Stream):
                    await self._stream(ws, conn, action)
            await ws.wait_closed()
        except Exception:  # a client going away mid-script is normal here
            return
        finally:
            reader.cancel()

    async def _stream(self, ws: ServerConnection, conn: WsConnection, action: Stream) -> None:
        rng = random.Random(action.seed)
        prices: dict[str, int] = {}
        seq = 0
        deadline = None if action.seconds is None else time.monotonic() + action.seconds
        while deadline is None or time.monotonic() < deadline:
            for exchange_type, token in sorted(conn.subscribed):
                start = round(self.ltp.get(token, 100.0 + int(token) % 400) * 100)
                price = max(prices.get(token, start) + rng.choice((-10, -5, 0, 5, 10)), 5)
                prices[token] = price
                seq += 1
                spread = 0 if exchange_type == 1 else 5
                frame = snap_packet(
                    token,
                    price,
                    int(time.time() * 1000),
                    seq=seq,
                    exchange_type=exchange_type,
                    last_qty=65,
                    volume=seq * 65,
                    bids=[(price - spread, 650, 3)] if spread else [],
                    asks=[(price + spread, 650, 3)] if spread else [],
                )
                await ws.send(frame)
                conn.frames_sent += 1
            await asyncio.sleep(1 / action.rate_hz)

    async def _ws_reader(
        self, ws: ServerConnection, conn: WsConnection, subscribed: asyncio.Event
    ) -> None:
        async for message in ws:
            if message == "ping":
                await ws.send("pong")
                continue
            try:
                request = json.loads(message)
            except ValueError:
                continue
            conn.subscribe_messages.append(request)
            params = request.get("params", {})
            for group in params.get("tokenList", []):
                for token in group.get("tokens", []):
                    key = (int(group.get("exchangeType")), str(token))
                    if request.get("action") == 1:
                        conn.subscribed.add(key)
                    else:
                        conn.subscribed.discard(key)
            if request.get("action") == 1:
                subscribed.set()


def _candle_times(start: datetime, end: datetime, interval: str) -> Iterator[datetime]:
    day = start.date()
    while day <= end.date():
        if day.weekday() < 5:
            if interval == "ONE_DAY":
                ts = datetime.combine(day, datetime.min.time(), IST)
                if start <= ts <= end or start.date() == day:
                    yield ts
            else:
                step = timedelta(minutes=CANDLE_STEP_MIN[interval])
                ts = datetime.combine(day, datetime.min.time(), IST).replace(hour=9, minute=15)
                close = ts.replace(hour=15, minute=30)
                while ts < close:
                    if start <= ts <= end:
                        yield ts
                    ts += step
        day += timedelta(days=1)


def _json(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def _ok(data: Any) -> bytes:
    return _json({"status": True, "message": "SUCCESS", "errorcode": "", "data": data})


def _refusal(message: str, code: str) -> bytes:
    return _json({"status": False, "message": message, "errorcode": code, "data": None})


def _make_handler(fake: FakeAngelOne) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, ctype, payload = fake.handle_rest(method, self.path, self.headers, body)
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            return

    return Handler
