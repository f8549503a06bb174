"""SmartAPI login, token refresh and REST calls, with typed errors and paced retries.

Why this wrapper: the SDK raises ``KeyError`` on a login answer without ``status``, turns a
403 plain-text rate-limit answer into a ``DataException`` about JSON, logs request headers
and login parameters on error, and has no pacing. Here every broker answer becomes either a
result or one of the ``errors`` classes; rate limits are retried with exponential backoff and
jitter up to ``login_max_attempts``; refused credentials are never retried (a retry storm can
lock the account), so a supervisor sees one clear error instead of a crash loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pyotp
import requests
from pydantic import SecretStr

from connectors.feeds.angelone._sdk import load_sdk, set_sdk_log_dir
from connectors.feeds.angelone.errors import (
    AngelOneError,
    AuthenticationError,
    BrokerUnavailableError,
    InvalidTotpError,
    RateLimitedError,
    RequestRejectedError,
)
from connectors.feeds.angelone.pacing import Backoff, RateLimiter
from connectors.feeds.angelone.redact import forget_secrets, redact, register_secrets
from connectors.feeds.angelone.settings import AngelOneCredentials, AngelOneSettings

log = logging.getLogger(__name__)

RATE_LIMIT_TEXT = "exceeding access rate"
# Login refusals that mean "the TOTP was wrong". AB1050 is what users report for an invalid
# TOTP (unconfirmed in official docs); the message text is checked as well.
TOTP_ERROR_CODES = frozenset({"AB1050"})
T = TypeVar("T")


@dataclass(frozen=True)
class SessionTokens:
    """Tokens from a login or refresh; reprs never show them."""

    jwt_token: SecretStr  # "Bearer …", as the websocket Authorization header wants it
    refresh_token: SecretStr
    feed_token: SecretStr
    api_key: SecretStr = field(repr=False)
    client_code: SecretStr = field(repr=False)


class AngelOneSession:
    """One authenticated SmartConnect client.

    >>> session = AngelOneSession(AngelOneSettings(), creds)   # doctest: +SKIP
    >>> tokens = session.login()                                  # doctest: +SKIP
    """

    def __init__(
        self,
        settings: AngelOneSettings,
        credentials: AngelOneCredentials,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        totp_now: Callable[[], str] | None = None,
    ) -> None:
        self.settings = settings
        self._creds = credentials
        self._sleep = sleep
        self._login_limiter = RateLimiter(settings.login_rate_per_s, clock=clock, sleep=sleep)
        self.candle_limiter = RateLimiter(settings.candles_rate_per_s, clock=clock, sleep=sleep)
        self._totp_now = totp_now or pyotp.TOTP(credentials.totp_secret.get_secret_value()).now
        register_secrets(credentials.secret_values())
        if settings.sdk_log_dir is not None:
            set_sdk_log_dir(settings.sdk_log_dir)
        smart_connect, _, self._sdk_exceptions = load_sdk()
        self.client: Any = smart_connect(
            api_key=credentials.api_key.get_secret_value(),
            root=settings.root_url,
            timeout=settings.http_timeout_s,
        )
        self.tokens: SessionTokens | None = None
        self.login_attempts = 0

    def __repr__(self) -> str:
        return (
            f"AngelOneSession(root={self.settings.root_url!r}, logged_in={self.tokens is not None})"
        )

    # ----------------------------------------------------------------------------- login
    def login(self) -> SessionTokens:
        """Log in with client code, MPIN and a fresh TOTP; retry only rate limits."""
        return self._with_rate_limit_retry("login", self._login_once, self._login_limiter)

    def _login_once(self) -> SessionTokens:
        self.login_attempts += 1
        creds = self._creds
        totp = self._totp_now()
        register_secrets([totp])
        try:
            answer = self._call(
                "login",
                lambda: self.client.generateSession(
                    creds.client_code.get_secret_value(), creds.mpin.get_secret_value(), totp
                ),
            )
        finally:
            forget_secrets([totp])
        if not isinstance(answer, dict) or answer.get("status") is not True:
            raise _login_refusal(answer)
        data = answer.get("data") or {}
        try:
            tokens = SessionTokens(
                jwt_token=SecretStr(_bearer(data["jwtToken"])),
                refresh_token=SecretStr(data["refreshToken"]),
                feed_token=SecretStr(data["feedToken"]),
                api_key=creds.api_key,
                client_code=creds.client_code,
            )
        except (KeyError, TypeError) as exc:
            msg = "login answer has no jwtToken/refreshToken/feedToken"
            raise BrokerUnavailableError(msg) from exc
        self._adopt(tokens)
        log.info("Angel One login succeeded")
        return tokens

    def refresh(self) -> SessionTokens:
        """New JWT and feed token from the refresh token; a full login if that is refused."""
        if self.tokens is None:
            return self.login()
        refresh_token = self.tokens.refresh_token.get_secret_value()
        try:
            answer = self._call("refresh", lambda: self.client.generateToken(refresh_token))
            data = answer["data"]
            tokens = SessionTokens(
                jwt_token=SecretStr(_bearer(data["jwtToken"])),
                refresh_token=SecretStr(data.get("refreshToken") or refresh_token),
                feed_token=SecretStr(data["feedToken"]),
                api_key=self._creds.api_key,
                client_code=self._creds.client_code,
            )
        except (AngelOneError, BrokerUnavailableError, KeyError, TypeError) as exc:
            log.warning("token refresh failed (%s); logging in again", type(exc).__name__)
            return self.login()
        self._adopt(tokens)
        log.info("Angel One tokens refreshed")
        return tokens

    def _adopt(self, tokens: SessionTokens) -> None:
        register_secrets(
            [
                tokens.jwt_token.get_secret_value(),
                tokens.refresh_token.get_secret_value(),
                tokens.feed_token.get_secret_value(),
            ]
        )
        self.client.setAccessToken(tokens.jwt_token.get_secret_value().removeprefix("Bearer "))
        self.client.setRefreshToken(tokens.refresh_token.get_secret_value())
        self.client.setFeedToken(tokens.feed_token.get_secret_value())
        self.tokens = tokens

    # ------------------------------------------------------------------------- market data
    def candles(
        self, exchange: str, token: str, interval: str, fromdate: str, todate: str
    ) -> list[list[Any]]:
        """Rows ``[iso_ts, o, h, l, c, v]`` from getCandleData, paced at ``candles_rate_per_s``."""
        params = {
            "exchange": exchange,
            "symboltoken": token,
            "interval": interval,
            "fromdate": fromdate,
            "todate": todate,
        }

        def once() -> list[list[Any]]:
            answer = self._call("candles", lambda: self.client.getCandleData(dict(params)))
            return _data_or_raise("getCandleData", answer) or []

        return self._with_rate_limit_retry("candles", once, self.candle_limiter)

    def ltp(self, exchange: str, tradingsymbol: str, token: str) -> float:
        """Last traded price in rupees (used to centre an option chain on the ATM strike)."""

        def once() -> float:
            answer = self._call("ltp", lambda: self.client.ltpData(exchange, tradingsymbol, token))
            data = _data_or_raise("getLtpData", answer)
            return float(data["ltp"])

        return self._with_rate_limit_retry("ltp", once, None)

    # ------------------------------------------------------------------------------ plumbing
    def _with_rate_limit_retry(
        self, what: str, fn: Callable[[], T], limiter: RateLimiter | None
    ) -> T:
        backoff = Backoff(self.settings.backoff_base_s, 2.0, self.settings.backoff_cap_s)
        attempts = max(1, self.settings.login_max_attempts)
        for attempt in range(1, attempts + 1):
            if limiter is not None:
                limiter.acquire()
            try:
                return fn()
            except (RateLimitedError, BrokerUnavailableError) as exc:
                if attempt == attempts:
                    raise
                delay = backoff.next_delay()
                log.warning(
                    "%s: %s (attempt %d/%d); retrying in %.2fs",
                    what,
                    exc,
                    attempt,
                    attempts,
                    delay,
                )
                self._sleep(delay)
        msg = f"{what}: no attempt made"  # unreachable: attempts >= 1
        raise AngelOneError(msg)

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        """Run one SDK call and translate whatever it raises into our error classes."""
        exceptions = self._sdk_exceptions
        try:
            return fn()
        except exceptions.SmartAPIException as exc:
            text = redact(str(exc))
            if RATE_LIMIT_TEXT in text.lower():
                msg = f"{what}: rate limited by Angel One (HTTP 403 exceeding access rate)"
                raise RateLimitedError(msg) from None
            if isinstance(exc, exceptions.TokenException | exceptions.PermissionException):
                msg = f"{what}: Angel One refused the session: {text}"
                raise AuthenticationError(msg) from None
            msg = f"{what}: Angel One error: {text[:300]}"
            raise BrokerUnavailableError(msg) from None
        except KeyError as exc:
            # The SDK indexes answer['status'] etc. without checking: a refusal body in
            # another shape (e.g. an invalid API key) surfaces as KeyError.
            msg = f"{what}: Angel One refused the request (answer without {exc.args[0]!r}); "
            msg += "check the API key"
            raise AuthenticationError(msg) from None
        except requests.RequestException as exc:
            msg = f"{what}: cannot reach Angel One: {type(exc).__name__}"
            raise BrokerUnavailableError(msg) from None


def _bearer(token: str) -> str:
    return token if token.startswith("Bearer ") else f"Bearer {token}"


def _login_refusal(answer: Any) -> AngelOneError | BrokerUnavailableError:
    if not isinstance(answer, dict):
        return BrokerUnavailableError("login: unusable answer from Angel One")
    code = str(answer.get("errorcode") or answer.get("errorCode") or "")
    message = redact(str(answer.get("message") or "login refused"))
    if code in TOTP_ERROR_CODES or "totp" in message.lower():
        msg = (
            f"Angel One rejected the TOTP ({code or 'no code'}: {message}); check the TOTP "
            "secret and that this machine's clock is synchronised (NTP)"
        )
        return InvalidTotpError(msg, errorcode=code)
    msg = f"Angel One rejected the login ({code or 'no code'}: {message}); check client code, "
    msg += "MPIN and API key"
    return AuthenticationError(msg, errorcode=code)


def _data_or_raise(what: str, answer: Any) -> Any:
    if isinstance(answer, dict) and answer.get("status") is True:
        return answer.get("data")
    if isinstance(answer, dict):
        code = str(answer.get("errorcode") or answer.get("errorCode") or "")
        message = redact(str(answer.get("message") or "refused"))
        if code.startswith("AG80"):
            msg = f"{what}: session token refused ({code}: {message})"
            raise AuthenticationError(msg, errorcode=code)
        msg = f"{what}: Angel One answered {code or 'no code'}: {message}"
        raise RequestRejectedError(msg)
    msg = f"{what}: unusable answer from Angel One"
    raise BrokerUnavailableError(msg)
