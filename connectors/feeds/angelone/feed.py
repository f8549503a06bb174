"""Live ticks from SmartWebSocketV2 into Kafka, with our own reconnect loop and watchdog.

The SDK's recovery is unusable for a feed that must not die silently (DOMAIN.md): its retry
runs nested inside the error callback with a counter that never resets, ``resubscribe`` is
never reached, subscriptions accumulate in a class-level dict, ``on_close`` never runs, a short
frame or an exception in ``on_data`` triggers a reconnect, and an open but silent socket is
never noticed. So each connection is a fresh SDK socket object whose callbacks are replaced:

- ``_on_open`` subscribes every time (instance-level subscriptions, nothing accumulates);
- ``_on_data`` hands raw frames to our parser (``packets``): a bad frame goes to the DLQ and
  the connection stays up;
- ``_on_error``/``_on_close`` only record what happened, ``connect()`` returns, and the loop in
  ``_run`` waits an exponential backoff with jitter (reset after a connection that delivered
  data) and connects again: no recursion, no attempt cap;
- a watchdog thread declares a stall when no data frame arrived for ``data_timeout_s`` on an
  open socket (or while disconnected): it emits ``RiskEvent(kind="FEED_STALLED")`` once per
  episode and forces a reconnect; the first data afterwards emits ``FEED_RECOVERED``.

Reading the wall clock is right here: ``ts_recv`` is by definition when this process saw it.
"""

from __future__ import annotations

import itertools
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import websocket

from connectors.errors import ConnectorError
from connectors.feeds.angelone import metrics
from connectors.feeds.angelone._sdk import load_sdk
from connectors.feeds.angelone.errors import AngelOneError, PacketDecodeError
from connectors.feeds.angelone.pacing import Backoff
from connectors.feeds.angelone.packets import MODE_NAMES, packet_to_tick, parse_packet, peek_token
from connectors.feeds.angelone.publisher import FeedPublisher
from connectors.feeds.angelone.redact import redact, register_secrets
from operators.events import RiskEvent, Tick

log = logging.getLogger(__name__)

MAX_TOKENS_PER_CONNECTION = 1000


@dataclass(frozen=True)
class FeedAuth:
    """What the websocket handshake needs (``auth_token`` is the ``Bearer …`` JWT)."""

    auth_token: str = field(repr=False)
    api_key: str = field(repr=False)
    client_code: str = field(repr=False)
    feed_token: str = field(repr=False)


@dataclass(frozen=True)
class Subscription:
    """Tokens to stream in one mode: ``{exchange_type: (token, ...)}``."""

    mode: int
    tokens: dict[int, tuple[str, ...]]

    def token_list(self) -> list[dict[str, Any]]:
        return [{"exchangeType": ex, "tokens": list(toks)} for ex, toks in self.tokens.items()]

    def count(self) -> int:
        return sum(len(t) for t in self.tokens.values())


@dataclass(frozen=True)
class FeedConfig:
    ws_url: str = "wss://smartapisocket.angelone.in/smart-stream"
    data_timeout_s: float = 5.0
    connect_timeout_s: float = 10.0
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    heartbeat_s: float = 10.0
    account: str = "*"

    def __post_init__(self) -> None:
        if self.data_timeout_s <= 0 or self.connect_timeout_s <= 0:
            msg = "data_timeout_s and connect_timeout_s must be positive"
            raise ValueError(msg)


@dataclass
class FeedStats:
    connections_opened: int = 0
    reconnects: int = 0
    ticks: int = 0
    dead_letters: int = 0
    stalls: int = 0
    recoveries: int = 0
    auth_refreshes: int = 0
    last_error: str = ""


def _socket_class() -> type:
    """A SmartWebSocketV2 subclass whose callbacks report to an ``AngelOneFeed``."""
    _, smart_ws, _ = load_sdk()

    class FeedSocket(smart_ws):  # type: ignore[misc, valid-type]
        # The SDK constructor writes logs/ in the cwd and shares subscription state through
        # class attributes; set the state it needs per instance instead of calling it.
        def __init__(self, feed: AngelOneFeed, auth: FeedAuth, url: str, heartbeat: float):
            self.auth_token = auth.auth_token
            self.api_key = auth.api_key
            self.client_code = auth.client_code
            self.feed_token = auth.feed_token
            self.ROOT_URI = url
            self.HEART_BEAT_INTERVAL = heartbeat
            self.input_request_dict: dict[int, dict[int, list[str]]] = {}
            self.RESUBSCRIBE_FLAG = False
            self.DISCONNECT_FLAG = True
            self.MAX_RETRY_ATTEMPT = 0
            self.current_retry_attempt = 0
            self.last_pong_timestamp = None
            self.wsapp = None
            self._feed = feed
            if not self._sanity_check():
                msg = "websocket credentials incomplete (auth, api key, client code, feed token)"
                raise AngelOneError(msg)

        def _on_open(self, wsapp: Any) -> None:
            self._feed._handle_open(self)

        def _on_data(self, wsapp: Any, data: Any, data_type: int, continue_flag: Any) -> None:
            self._feed._handle_frame(self, data, data_type)

        def _on_error(self, wsapp: Any, error: Any) -> None:
            self._feed._handle_error(self, error)

        def _on_close(self, wsapp: Any, code: Any = None, reason: Any = None) -> None:
            self._feed._handle_close(self, code, reason)

    return FeedSocket


class AngelOneFeed:
    """Stream ``subscriptions`` into Kafka until ``stop()``; see the module docstring."""

    def __init__(
        self,
        config: FeedConfig,
        subscriptions: Sequence[Subscription],
        auth: Callable[[], FeedAuth],
        publisher: FeedPublisher,
        *,
        refresh_auth: Callable[[], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        total = sum(s.count() for s in subscriptions)
        if not subscriptions or total == 0:
            msg = "nothing to subscribe"
            raise ValueError(msg)
        if total > MAX_TOKENS_PER_CONNECTION:
            msg = f"{total} tokens exceed {MAX_TOKENS_PER_CONNECTION} per websocket connection"
            raise ValueError(msg)
        for sub in subscriptions:
            if sub.mode not in MODE_NAMES:
                msg = f"unsupported subscription mode {sub.mode}"
                raise ValueError(msg)
        self.config = config
        self.subscriptions = tuple(subscriptions)
        self._auth = auth
        self._refresh_auth = refresh_auth
        self.publisher = publisher
        self._clock = clock
        self._now = wall_clock
        self._backoff = Backoff(config.backoff_base_s, 2.0, config.backoff_cap_s, rng=rng)
        self._socket_cls = _socket_class()
        self.stats = FeedStats()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._socket: Any = None
        self._open = False
        self._opened_at = 0.0
        self._last_data: float | None = None
        self._disconnected_at: float | None = None
        self._frames_this_connection = 0
        self._auth_rejected = False
        self._stalled = False
        self._stalled_since = 0.0
        self._correlation = itertools.count(1)
        self._threads: list[threading.Thread] = []

    # ----------------------------------------------------------------------------- control
    def start(self) -> None:
        """Run the connection loop and the watchdog on their own daemon threads."""
        if self._threads:
            msg = "feed already started"
            raise RuntimeError(msg)
        self._disconnected_at = self._clock()
        for target, name in ((self._run, "angelone-ws"), (self._watchdog, "angelone-watchdog")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Close the socket, join the threads and flush Kafka."""
        self._stop.set()
        self._force_close()
        for thread in self._threads:
            thread.join(timeout)
        self.publisher.flush(timeout)

    def run_until_stopped(self) -> None:
        """Blocking form for the CLI: start, then wait (Ctrl-C stops cleanly)."""
        self.start()
        try:
            while not self._stop.wait(1.0):
                self.publisher.poll(0)
        except KeyboardInterrupt:
            log.info("stopping the Angel One feed")
        finally:
            self.stop()

    @property
    def is_open(self) -> bool:
        return self._open

    # ------------------------------------------------------------------- connection loop
    def _run(self) -> None:
        websocket.setdefaulttimeout(self.config.connect_timeout_s)
        while not self._stop.is_set():
            try:
                auth = self._auth()
                register_secrets([auth.auth_token, auth.feed_token, auth.api_key])
                sock = self._socket_cls(self, auth, self.config.ws_url, self.config.heartbeat_s)
                with self._lock:
                    self._socket = sock
                    self._frames_this_connection = 0
                sock.connect()  # blocks until the socket closes
            except Exception as exc:  # the loop must survive anything a connection does
                self.stats.last_error = redact(f"{type(exc).__name__}: {exc}")
                log.warning("websocket connection ended with %s", self.stats.last_error)
            with self._lock:
                self._socket = None
                was_open, self._open = self._open, False
                if was_open or self._disconnected_at is None:
                    self._disconnected_at = self._clock()
                delivered = self._frames_this_connection > 0
                auth_rejected, self._auth_rejected = self._auth_rejected, False
            metrics.CONNECTED.set(0)
            if self._stop.is_set():
                break
            if delivered:
                self._backoff.reset()
            if auth_rejected and self._refresh_auth is not None:
                self._refresh()
            delay = self._backoff.next_delay()
            self.stats.reconnects += 1
            metrics.RECONNECTS.inc()
            log.info("reconnecting to the Angel One feed in %.2fs", delay)
            self._stop.wait(delay)

    def _refresh(self) -> None:
        assert self._refresh_auth is not None
        try:
            self._refresh_auth()
            self.stats.auth_refreshes += 1
        except ConnectorError as exc:  # AngelOneError or BrokerUnavailableError
            log.error("feed credentials could not be refreshed: %s", exc)

    def _force_close(self) -> None:
        """Make a blocked ``run_forever`` return now (shutting the TCP socket wakes select)."""
        with self._lock:
            sock = self._socket
        app = getattr(sock, "wsapp", None)
        if app is None:
            return
        app.keep_running = False
        raw = getattr(getattr(app, "sock", None), "sock", None)
        if raw is not None:
            try:
                raw.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # --------------------------------------------------------------------------- callbacks
    def _handle_open(self, sock: Any) -> None:
        for sub in self.subscriptions:
            correlation = f"sf{next(self._correlation):08d}"
            sock.subscribe(correlation, sub.mode, sub.token_list())
        with self._lock:
            self._open = True
            self._opened_at = self._clock()
            self._disconnected_at = None
        self.stats.connections_opened += 1
        metrics.CONNECTED.set(1)
        log.info(
            "Angel One feed open; subscribed %d tokens", sum(s.count() for s in self.subscriptions)
        )

    def _handle_frame(self, sock: Any, data: Any, data_type: int) -> None:
        if data_type != websocket.ABNF.OPCODE_BINARY:
            text = data if isinstance(data, str) else bytes(data).decode("utf-8", "replace")
            if text.strip() != "pong":
                log.warning("Angel One feed message: %s", redact(text[:500]))
            return
        ts_recv = self._now()
        frame = bytes(data)
        recovered_after: float | None = None
        with self._lock:
            now = self._clock()
            self._last_data = now
            self._frames_this_connection += 1
            if self._stalled:
                self._stalled = False
                recovered_after = now - self._stalled_since
        if recovered_after is not None:
            self._emit_risk("FEED_RECOVERED", f"data resumed after {recovered_after:.1f}s", ts_recv)
            self.stats.recoveries += 1
        try:
            packet = parse_packet(frame)
            tick = packet_to_tick(packet, ts_recv)
        except PacketDecodeError as exc:
            self._dead_letter(frame, str(exc))
            return
        except Exception as exc:  # never let a frame take the connection down
            self._dead_letter(frame, f"internal decode error: {type(exc).__name__}: {exc}")
            return
        self._publish(tick, MODE_NAMES[packet.mode])

    def _publish(self, tick: Tick, mode: str) -> None:
        try:
            self.publisher.publish_tick(tick)
        except Exception as exc:
            log.error("cannot hand tick to Kafka: %s", exc)
            return
        self.stats.ticks += 1
        metrics.TICKS.labels(mode=mode).inc()
        metrics.LAG.observe(max((tick.ts_recv - tick.ts_event).total_seconds(), 0.0))

    def _dead_letter(self, frame: bytes, reason: str) -> None:
        self.stats.dead_letters += 1
        metrics.DEAD_LETTERS.inc()
        log.warning("undecodable Angel One frame (%d bytes): %s", len(frame), reason)
        try:
            self.publisher.publish_dead_letter(frame, reason, peek_token(frame))
        except Exception as exc:
            log.error("cannot hand a dead letter to Kafka: %s", exc)

    def _handle_error(self, sock: Any, error: Any) -> None:
        status = getattr(error, "status_code", None)
        if status in (401, 403):
            with self._lock:
                self._auth_rejected = True
        if not self._stop.is_set():
            self.stats.last_error = redact(f"{type(error).__name__}: {error}")
            log.warning("Angel One feed error: %s", self.stats.last_error)

    def _handle_close(self, sock: Any, code: Any, reason: Any) -> None:
        log.info("Angel One feed closed (code=%s)", code)

    # ---------------------------------------------------------------------------- watchdog
    def _watchdog(self) -> None:
        period = min(0.25, self.config.data_timeout_s / 4)
        timeout = self.config.data_timeout_s
        while not self._stop.wait(period):
            now = self._clock()
            with self._lock:
                if self._stalled:
                    stalled_open = self._open and now - self._opened_at >= timeout
                    if stalled_open:
                        self._opened_at = now  # one forced reconnect per timeout, not a spin
                    fire, detail = False, ""
                elif self._open:
                    since = max(self._last_data or self._opened_at, self._opened_at)
                    silent = now - since
                    stalled_open = silent >= timeout
                    fire = stalled_open
                    detail = f"no data for {silent:.1f}s on an open socket"
                else:
                    stalled_open = False
                    since = self._disconnected_at if self._disconnected_at is not None else now
                    if self._last_data is not None:
                        since = max(since, self._last_data)
                    fire = now - since >= timeout
                    detail = f"disconnected for {now - since:.1f}s"
                if fire:
                    self._stalled = True
                    self._stalled_since = now
            if fire:
                self.stats.stalls += 1
                metrics.STALLS.inc()
                log.error("Angel One feed stalled: %s", detail)
                self._emit_risk("FEED_STALLED", detail, self._now())
            if stalled_open:
                log.warning("forcing a reconnect of the silent Angel One socket")
                self._force_close()

    def _emit_risk(self, kind: str, detail: str, ts: datetime) -> None:
        event = RiskEvent(
            ts_event=ts,
            ts_recv=ts,
            account=self.config.account,
            kind=kind,  # type: ignore[arg-type]
            detail=f"angelone: {detail}",
        )
        try:
            self.publisher.publish_risk(event)
        except Exception as exc:
            log.error("cannot hand a risk event to Kafka: %s", exc)
