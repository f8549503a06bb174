"""Keep secrets out of every log line, including the ones the SmartAPI SDK writes.

The SDK logs request headers (API key, bearer token) and login parameters (MPIN, TOTP) on
errors, and ``requests``/``urllib3`` log URLs that carry the refresh token. Filters on single
loggers miss child loggers and ``pytest``'s handlers, so the redaction sits in the log record
factory: every record created in the process has its message, arguments and traceback text
scrubbed of the registered secret values before any handler sees it.
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from collections.abc import Iterable
from typing import Any

MASK = "***"
_MIN_SECRET_LEN = 4  # shorter values would mangle ordinary text and are not secrets worth hiding

# Values next to these names are masked even before they are known (the SDK sends the fresh
# refresh token in the profile request's URL before the login call returns).
_SENSITIVE_NAMES = r"refreshToken|jwtToken|feedToken|password|totp|clientcode|X-PrivateKey"
_NAMED_VALUE = re.compile(
    rf"""((?:{_SENSITIVE_NAMES}|Authorization)['"]?\s*[:=]\s*['"]?)(?:Bearer )?[^'"\s,&}}]+""",
    re.IGNORECASE,
)
_URL_ENCODED_VALUE = re.compile(
    rf"(%22(?:{_SENSITIVE_NAMES})%22(?::|%3A)(?:%20|\+)*%22)[^%]+", re.IGNORECASE
)

_lock = threading.Lock()
_secrets: set[str] = set()
_installed = False
_previous_factory: Any = None


def register_secrets(values: Iterable[str | None]) -> None:
    """Add values that must never appear in a log record; installs the record factory once."""
    global _installed, _previous_factory
    with _lock:
        for value in values:
            if value and len(value) >= _MIN_SECRET_LEN:
                _secrets.add(value)
                bare = value.removeprefix("Bearer ")
                if len(bare) >= _MIN_SECRET_LEN:
                    _secrets.add(bare)
        if not _installed:
            _previous_factory = logging.getLogRecordFactory()
            logging.setLogRecordFactory(_redacting_factory)
            _installed = True


def forget_secrets(values: Iterable[str | None]) -> None:
    """Stop masking values that are no longer sensitive (e.g. a spent one-time code)."""
    with _lock:
        for value in values:
            if value:
                _secrets.discard(value)


def redact(text: str) -> str:
    """Replace every registered secret in ``text`` with ``***`` (longest first)."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    text = _NAMED_VALUE.sub(rf"\g<1>{MASK}", text)
    return _URL_ENCODED_VALUE.sub(rf"\g<1>{MASK}", text)


def _redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record: logging.LogRecord = _previous_factory(*args, **kwargs)
    try:
        message = record.getMessage()
    except Exception:  # a broken format string must not break logging
        message = f"{record.msg!r} {record.args!r}"
    record.msg = redact(message)
    record.args = None
    if record.exc_info and record.exc_info[0] is not None:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        record.exc_text = redact(text)
    return record
