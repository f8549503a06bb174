"""Angel One configuration and credentials (env / pydantic-settings, or an encrypted file).

Secrets are ``SecretStr`` everywhere and are masked in reprs, logs and validation errors.
The encrypted file is AES-256-GCM (``cryptography``) with the key, base64 of 32 bytes, in the
environment variable named by ``credentials_key_env`` (default
``SCALPFLOW_ANGELONE_CREDENTIALS_KEY``).

Example::

    export SCALPFLOW_ANGELONE_API_KEY=... SCALPFLOW_ANGELONE_CLIENT_CODE=...
    export SCALPFLOW_ANGELONE_MPIN=... SCALPFLOW_ANGELONE_TOTP_SECRET=...
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors.feeds.angelone.errors import CredentialsError

ENV_PREFIX = "SCALPFLOW_ANGELONE_"
DEFAULT_KEY_ENV = "SCALPFLOW_ANGELONE_CREDENTIALS_KEY"
_FILE_VERSION = 1
_AAD = b"scalpflow/angelone/credentials/v1"

# Maximum days per getCandleData request, per interval. From the SmartAPI documentation as
# quoted by several client libraries (not confirmed against the live API): a setting.
DEFAULT_CANDLE_MAX_DAYS: dict[str, int] = {
    "ONE_MINUTE": 30,
    "THREE_MINUTE": 60,
    "FIVE_MINUTE": 100,
    "TEN_MINUTE": 100,
    "FIFTEEN_MINUTE": 200,
    "THIRTY_MINUTE": 200,
    "ONE_HOUR": 400,
    "ONE_DAY": 2000,
}


class AngelOneCredentials(BaseModel):
    """The four secrets a SmartAPI login needs."""

    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    api_key: SecretStr
    client_code: SecretStr
    mpin: SecretStr
    totp_secret: SecretStr

    @field_validator("totp_secret")
    @classmethod
    def _base32(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value().replace(" ", "").upper()
        try:
            base64.b32decode(text + "=" * (-len(text) % 8))
        except (binascii.Error, ValueError) as exc:
            msg = "totp_secret is not base32 (copy it from the Angel One TOTP set-up page)"
            raise ValueError(msg) from exc
        return SecretStr(text)

    def secret_values(self) -> list[str]:
        return [
            self.api_key.get_secret_value(),
            self.client_code.get_secret_value(),
            self.mpin.get_secret_value(),
            self.totp_secret.get_secret_value(),
        ]


class AngelOneSettings(BaseSettings):
    """Connection settings; secrets come from env vars or from ``credentials_file``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, hide_input_in_errors=True, extra="ignore"
    )

    api_key: SecretStr | None = None
    client_code: SecretStr | None = None
    mpin: SecretStr | None = None
    totp_secret: SecretStr | None = None
    credentials_file: Path | None = None
    credentials_key_env: str = DEFAULT_KEY_ENV

    root_url: str = "https://apiconnect.angelone.in"
    ws_url: str = "wss://smartapisocket.angelone.in/smart-stream"
    instrument_master_url: str = (
        "https://margincalculator.angelbroking.com/OpenAPI_File/files/OpenAPIScripMaster.json"
    )
    instrument_cache: Path | None = None
    sdk_log_dir: Path | None = None
    http_timeout_s: float = 7.0

    login_max_attempts: int = 5
    login_rate_per_s: float = 1.0
    candles_rate_per_s: float = 3.0
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 30.0
    candle_max_days: dict[str, int] = DEFAULT_CANDLE_MAX_DAYS

    data_timeout_s: float = 5.0
    ws_connect_timeout_s: float = 10.0
    ws_backoff_base_s: float = 0.5
    ws_backoff_cap_s: float = 30.0

    def credentials(self) -> AngelOneCredentials:
        """The credentials from the encrypted file if configured, else from the environment."""
        if self.credentials_file is not None:
            return load_encrypted_credentials(self.credentials_file, self.credentials_key_env)
        fields = {
            "api_key": self.api_key,
            "client_code": self.client_code,
            "mpin": self.mpin,
            "totp_secret": self.totp_secret,
        }
        missing = [f"{ENV_PREFIX}{k.upper()}" for k, v in fields.items() if v is None]
        if missing:
            msg = f"Angel One credentials missing: set {', '.join(missing)} or credentials_file"
            raise CredentialsError(msg)
        try:
            return AngelOneCredentials.model_validate(fields)
        except ValidationError as exc:
            msg = f"Angel One credentials invalid: {_field_errors(exc)}"
            raise CredentialsError(msg) from None


def _field_errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


def generate_key() -> str:
    """A fresh random AES-256 key, base64 (put it in the key env var, never in the repo)."""
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode("ascii")


def _key_from_env(key_env: str) -> bytes:
    encoded = os.environ.get(key_env)
    if not encoded:
        msg = f"the credentials key is not set: export {key_env}=<base64 of 32 bytes>"
        raise CredentialsError(msg)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        msg = f"{key_env} is not valid base64"
        raise CredentialsError(msg) from exc
    if len(key) != 32:
        msg = f"{key_env} must decode to 32 bytes (AES-256), got {len(key)}"
        raise CredentialsError(msg)
    return key


def encrypt_credentials(creds: AngelOneCredentials, key: bytes) -> bytes:
    """Serialise and encrypt credentials into the file format (JSON envelope)."""
    plaintext = json.dumps(
        {
            "api_key": creds.api_key.get_secret_value(),
            "client_code": creds.client_code.get_secret_value(),
            "mpin": creds.mpin.get_secret_value(),
            "totp_secret": creds.totp_secret.get_secret_value(),
        }
    ).encode()
    nonce = secrets.token_bytes(12)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, _AAD)
    envelope = {
        "version": _FILE_VERSION,
        "alg": "AES-256-GCM",
        "nonce": base64.b64encode(nonce).decode(),
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }
    return json.dumps(envelope, indent=2).encode()


def decrypt_credentials(blob: bytes, key: bytes) -> AngelOneCredentials:
    """Inverse of ``encrypt_credentials``; a wrong key or a tampered file is a CredentialsError."""
    try:
        envelope = json.loads(blob)
        if envelope.get("version") != _FILE_VERSION:
            msg = f"unsupported credentials file version {envelope.get('version')!r}"
            raise CredentialsError(msg)
        nonce = base64.b64decode(envelope["nonce"])
        ciphertext = base64.b64decode(envelope["ciphertext"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        msg = "the credentials file is not a scalpflow encrypted credentials file"
        raise CredentialsError(msg) from exc
    try:
        plaintext = AESGCM(key).decrypt(nonce, ciphertext, _AAD)
    except InvalidTag:
        msg = "cannot decrypt the credentials file: wrong key or the file was modified"
        raise CredentialsError(msg) from None
    try:
        return AngelOneCredentials.model_validate_json(plaintext)
    except ValidationError as exc:
        msg = f"decrypted credentials invalid: {_field_errors(exc)}"
        raise CredentialsError(msg) from None


def write_encrypted_credentials(
    path: Path, creds: AngelOneCredentials, key_env: str = DEFAULT_KEY_ENV
) -> None:
    """Encrypt ``creds`` with the key in ``key_env`` and write them to ``path`` (mode 0600)."""
    blob = encrypt_credentials(creds, _key_from_env(key_env))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(blob)


def load_encrypted_credentials(path: Path, key_env: str = DEFAULT_KEY_ENV) -> AngelOneCredentials:
    try:
        blob = Path(path).read_bytes()
    except OSError as exc:
        msg = f"cannot read the credentials file {path}: {exc.strerror}"
        raise CredentialsError(msg) from exc
    return decrypt_credentials(blob, _key_from_env(key_env))
