"""Login, refresh, typed errors and backoff against the fake Angel One with the real SDK;
credentials handling; the SDK's import-time network call; secrets kept out of logs."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from connectors.feeds.angelone.errors import (
    AuthenticationError,
    CredentialsError,
    InvalidTotpError,
    RateLimitedError,
)
from connectors.feeds.angelone.session import AngelOneSession
from connectors.feeds.angelone.settings import (
    AngelOneCredentials,
    AngelOneSettings,
    decrypt_credentials,
    encrypt_credentials,
    generate_key,
    load_encrypted_credentials,
    write_encrypted_credentials,
)
from tests.fake_angelone.fixtures import *  # noqa: F403
from tests.fake_angelone.fixtures import credentials_of, settings_for
from tests.fake_angelone.server import FakeAngelOne

REPO = Path(__file__).resolve().parents[2]


def _session(
    fake: FakeAngelOne,
    tmp_path: Path,
    creds: AngelOneCredentials | None = None,
    sleeps: list[float] | None = None,
    **overrides: object,
) -> AngelOneSession:
    recorded = sleeps if sleeps is not None else []
    return AngelOneSession(
        settings_for(fake, tmp_path, **overrides),
        creds or credentials_of(fake),
        sleep=recorded.append,
    )


def test_login_returns_bearer_jwt_and_feed_token(
    fake_angelone: FakeAngelOne, tmp_path: Path
) -> None:
    tokens = _session(fake_angelone, tmp_path).login()
    assert tokens.jwt_token.get_secret_value().startswith("Bearer eyJ")
    assert tokens.feed_token.get_secret_value().startswith("ft")
    assert "**" in repr(tokens)
    assert "eyJ" not in repr(tokens)
    assert fake_angelone.count("login") == 1
    assert fake_angelone.count("profile", 200) == 1


def test_wrong_mpin_is_an_authentication_error_without_retry(
    fake_angelone: FakeAngelOne, tmp_path: Path
) -> None:
    good = credentials_of(fake_angelone)
    bad = good.model_copy(update={"mpin": SecretStr("0000")})
    sleeps: list[float] = []
    with pytest.raises(AuthenticationError, match="client code, MPIN and API key") as info:
        _session(fake_angelone, tmp_path, bad, sleeps).login()
    assert not isinstance(info.value, InvalidTotpError)
    assert fake_angelone.count("login") == 1
    assert sleeps == []


def test_wrong_totp_secret_is_an_invalid_totp_error(
    fake_angelone: FakeAngelOne, tmp_path: Path
) -> None:
    bad = credentials_of(fake_angelone).model_copy(
        update={"totp_secret": SecretStr("KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU")}
    )
    with pytest.raises(InvalidTotpError, match="clock") as info:
        _session(fake_angelone, tmp_path, bad).login()
    assert info.value.errorcode == "AB1050"
    assert fake_angelone.count("login") == 1


def test_answer_without_status_is_a_clear_error_not_a_keyerror(
    fake_angelone: FakeAngelOne, tmp_path: Path
) -> None:
    bad = credentials_of(fake_angelone).model_copy(update={"api_key": SecretStr("wrongKey1")})
    with pytest.raises(AuthenticationError, match="API key"):
        _session(fake_angelone, tmp_path, bad).login()


def test_rate_limit_is_retried_with_growing_backoff(
    fake_angelone: FakeAngelOne, tmp_path: Path
) -> None:
    fake_angelone.fail_next("login", "rate_limit", times=2)
    sleeps: list[float] = []
    session = _session(
        fake_angelone, tmp_path, sleeps=sleeps, backoff_base_s=0.01, login_rate_per_s=1e6
    )
    assert session.login().feed_token.get_secret_value()
    assert fake_angelone.count("login", 403) == 2
    assert fake_angelone.count("login", 200) == 1
    assert len(sleeps) == 2
    assert 0.005 <= sleeps[0] <= 0.01
    assert 0.01 <= sleeps[1] <= 0.02


def test_persistent_rate_limit_gives_up_after_the_attempt_budget(
    fake_angelone: FakeAngelOne, tmp_path: Path
) -> None:
    fake_angelone.fail_next("login", "rate_limit", times=10)
    session = _session(fake_angelone, tmp_path, login_max_attempts=3)
    with pytest.raises(RateLimitedError, match="exceeding access rate"):
        session.login()
    assert fake_angelone.count("login") == 3


def test_refresh_issues_new_tokens_and_falls_back_to_login(
    fake_angelone: FakeAngelOne, tmp_path: Path
) -> None:
    session = _session(fake_angelone, tmp_path)
    first = session.login()
    second = session.refresh()
    assert second.feed_token.get_secret_value() != first.feed_token.get_secret_value()
    assert fake_angelone.count("refresh", 200) == 1
    fake_angelone.revoke_all_tokens()
    third = session.refresh()
    assert fake_angelone.count("login") == 2
    assert third.feed_token.get_secret_value() != second.feed_token.get_secret_value()


def test_sdk_logs_go_to_the_configured_dir_not_the_cwd(
    fake_angelone: FakeAngelOne, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    _session(fake_angelone, tmp_path / "sdklogs").login()
    assert not (cwd / "logs").exists()
    assert list((tmp_path / "sdklogs" / "logs").iterdir())


def test_sdk_import_makes_no_network_call() -> None:
    """Import the SDK with every outbound connection recorded and refused: none is tried."""
    code = (
        "import socket\n"
        "calls = []\n"
        "def refuse(*a, **k):\n"
        "    calls.append(a)\n"
        "    raise OSError('network disabled in this test')\n"
        "socket.create_connection = refuse\n"
        "socket.socket.connect = lambda self, *a: refuse(*a)\n"
        "from connectors.feeds.angelone._sdk import load_sdk\n"
        "SmartConnect, SmartWebSocketV2, _ = load_sdk()\n"
        "print(len(calls), SmartConnect.__name__, SmartWebSocketV2.__name__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.stdout.split() == ["0", "SmartConnect", "SmartWebSocketV2"]


def test_secrets_never_reach_logs(
    fake_angelone: FakeAngelOne,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    creds = credentials_of(fake_angelone)
    wrong = creds.model_copy(update={"mpin": SecretStr("8642")})
    with pytest.raises(AuthenticationError) as refused:
        _session(fake_angelone, tmp_path, wrong).login()  # the SDK logs params on refusal
    session = _session(fake_angelone, tmp_path)
    tokens = session.login()
    session.refresh()
    fake_angelone.fail_next("candles", "server_error", times=1)
    session.candles("NSE", "26000", "ONE_DAY", "2026-07-20 09:15", "2026-07-21 15:30")
    secrets = [
        *creds.secret_values(),
        "8642",
        tokens.refresh_token.get_secret_value(),
        tokens.jwt_token.get_secret_value().removeprefix("Bearer "),
        tokens.feed_token.get_secret_value(),
    ]
    captured = capfd.readouterr()
    logged = caplog.text + captured.out + captured.err + str(refused.value)
    sdk_log_files = "".join(p.read_text() for p in (tmp_path / "logs").rglob("*.log"))
    assert "Error occurred while making a POST request" in logged + sdk_log_files
    for secret in secrets:
        assert secret not in logged
        assert secret not in sdk_log_files
    assert secret not in repr(session)
    assert secret not in repr(session.settings)


# ------------------------------------------------------------------------- credentials
def _creds() -> AngelOneCredentials:
    return AngelOneCredentials(
        api_key=SecretStr("k3yABCD"),
        client_code=SecretStr("C9999"),
        mpin=SecretStr("2468"),
        totp_secret=SecretStr("JBSWY3DPEHPK3PXP"),
    )


def test_settings_from_env_mask_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "API_KEY": "envKey123",
        "CLIENT_CODE": "E777",
        "MPIN": "1357",
        "TOTP_SECRET": "JBSWY3DPEHPK3PXP",
    }.items():
        monkeypatch.setenv(f"SCALPFLOW_ANGELONE_{name}", value)
    settings = AngelOneSettings()
    creds = settings.credentials()
    assert creds.mpin.get_secret_value() == "1357"
    assert "1357" not in repr(settings)
    assert "envKey123" not in str(settings)


def test_missing_and_invalid_credentials_name_the_variable_not_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("API_KEY", "CLIENT_CODE", "MPIN", "TOTP_SECRET"):
        monkeypatch.delenv(f"SCALPFLOW_ANGELONE_{name}", raising=False)
    with pytest.raises(CredentialsError, match="SCALPFLOW_ANGELONE_MPIN"):
        AngelOneSettings().credentials()
    settings = AngelOneSettings(
        api_key=SecretStr("k3yABCD"),
        client_code=SecretStr("C1"),
        mpin=SecretStr("2468"),
        totp_secret=SecretStr("not base32 !!"),
    )
    with pytest.raises(CredentialsError, match="totp_secret") as info:
        settings.credentials()
    assert "not base32 !!" not in str(info.value)


def test_encrypted_file_round_trip_and_tamper_detection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCALPFLOW_ANGELONE_CREDENTIALS_KEY", generate_key())
    path = tmp_path / "angel.enc"
    write_encrypted_credentials(path, _creds())
    assert b"2468" not in path.read_bytes()
    assert b"k3yABCD" not in path.read_bytes()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    loaded = AngelOneSettings(credentials_file=path).credentials()
    assert loaded.secret_values() == _creds().secret_values()
    monkeypatch.setenv("SCALPFLOW_ANGELONE_CREDENTIALS_KEY", generate_key())
    with pytest.raises(CredentialsError, match="wrong key"):
        load_encrypted_credentials(path)
    key = os.urandom(32)
    blob = bytearray(encrypt_credentials(_creds(), key))
    blob[blob.index(b'"ciphertext": "') + 20] ^= 1
    with pytest.raises(CredentialsError):
        decrypt_credentials(bytes(blob), key)


def test_cli_login_failure_exits_once_with_a_clear_message(
    fake_angelone: FakeAngelOne, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from flows.cli.angelone import app

    c = fake_angelone.creds
    env = {
        "ROOT_URL": fake_angelone.root_url,
        "WS_URL": fake_angelone.ws_url,
        "INSTRUMENT_MASTER_URL": fake_angelone.master_url,
        "API_KEY": c.api_key,
        "CLIENT_CODE": c.client_code,
        "MPIN": "1111",
        "TOTP_SECRET": c.totp_secret,
        "SDK_LOG_DIR": str(tmp_path),
    }
    for name, value in env.items():
        monkeypatch.setenv(f"SCALPFLOW_ANGELONE_{name}", value)
    result = CliRunner().invoke(app, ["feed", "--metrics-port", "0"])
    assert result.exit_code == 2
    assert "rejected the login" in result.output
    assert fake_angelone.count("login") == 1
    for secret in (c.api_key, c.client_code, c.totp_secret):
        assert secret not in result.output
