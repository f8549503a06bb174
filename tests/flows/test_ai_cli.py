"""`scalpflow ai train/evaluate` against a real PostgreSQL holding synthetic-market candles."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
from connectors.files.model_store import load_model
from flows.cli.ai import beats_rules
from flows.cli.app import app
from operators.events import Candle

RUN_ID = "ai-cli-test"
TOKEN = "26000"
DAYS = (date(2025, 3, 3), date(2025, 3, 4), date(2025, 3, 5), date(2025, 3, 6))
RANGE = ["--from", "2025-03-03", "--to", "2025-03-06", "--run-id", RUN_ID]
runner = CliRunner()


def index_candles(seed: int, day: date) -> list[Candle]:
    """1-minute candles of the synthetic index for a full session."""
    market = SyntheticMarket(
        SyntheticConfig(seed=seed, date=day, strikes_each_side=0, tick_rate_scale=0.2)
    )
    candles = market.index_candles()
    assert candles
    return candles


def paise(v: int) -> Decimal:
    return Decimal(v).scaleb(-2)


@pytest.fixture(scope="module")
def candle_dsn(pg_dsn: str) -> str:
    rows = [
        (RUN_ID, TOKEN, "1m", c.start, paise(c.open), paise(c.high), paise(c.low),
         paise(c.close), c.volume, c.vwap / 100, c.ticks)
        for i, day in enumerate(DAYS)
        for c in index_candles(seed=20 + i, day=day)
    ]  # fmt: skip
    with psycopg.connect(pg_dsn, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO candles (run_id, token, interval, ts, open, high, low, close, volume,"
            " vwap, ticks) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            rows,
        )
    assert len(rows) == 375 * len(DAYS)
    return pg_dsn


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, candle_dsn: str) -> Path:
    monkeypatch.chdir(tmp_path)  # no stray .env; relative paths land in tmp
    monkeypatch.setenv("SCALPFLOW_PG_DSN", candle_dsn)
    return tmp_path


def printed_sha(output: str) -> str:
    line = next(ln for ln in output.splitlines() if ln.startswith("sha256 "))
    return line.split()[1]


def test_train_reports_and_saves_a_verifiable_model(env: Path) -> None:
    res = runner.invoke(
        app, ["ai", "train", *RANGE, "--models-dir", "m1", "--seed", "3", "--promote-anyway"]
    )
    assert res.exit_code == 0, res.output
    assert "rule baseline" in res.stdout
    assert "overall" in res.stdout
    assert "confusion matrix" in res.stdout
    assert "accuracy" in res.stdout
    sha = printed_sha(res.stdout)
    latest = (env / "m1" / "LATEST").read_text().strip()
    blob = (env / "m1" / f"regime-{latest}.pkl").read_bytes()
    assert hashlib.sha256(blob).hexdigest() == sha
    meta = json.loads((env / "m1" / f"regime-{latest}.json").read_text())
    assert meta["sha256"] == sha
    assert meta["sessions"] == len(DAYS)
    assert len(meta["walk_forward"]["folds"]) == 4
    assert 0.0 <= meta["walk_forward"]["rule_accuracy"] <= 1.0
    model = load_model(env / "m1")  # verifies the hash itself
    assert model.version == latest
    assert model.seed == 3


def test_same_seed_same_model_hash(env: Path) -> None:
    shas = []
    for d in ("a", "b"):
        res = runner.invoke(app, ["ai", "train", *RANGE, "--models-dir", d, "--folds", "2"])
        assert res.exit_code == 0, res.output
        shas.append(printed_sha(res.stdout))
    assert shas[0] == shas[1]
    res = runner.invoke(app, ["ai", "train", *RANGE, "--models-dir", "c", "--seed", "1"])
    assert res.exit_code == 0, res.output
    assert printed_sha(res.stdout) != shas[0]


def test_promotion_follows_the_verdict(env: Path) -> None:
    """Without --promote-anyway, LATEST moves exactly when the printed verdict says 'beats'."""
    res = runner.invoke(app, ["ai", "train", *RANGE, "--models-dir", "m2", "--folds", "2"])
    assert res.exit_code == 0, res.output
    beats = "the model beats the rules" in res.stdout
    assert beats != ("does NOT beat" in res.stdout)
    assert (env / "m2" / "LATEST").exists() == beats
    assert ("NOT promoted" in res.stdout) == (not beats)
    saved = next((env / "m2").glob("regime-*.pkl"))  # saved either way, loadable by version
    version = saved.stem.removeprefix("regime-")
    assert load_model(env / "m2", version).version == version
    res = runner.invoke(
        app, ["ai", "train", *RANGE, "--models-dir", "m2", "--folds", "2", "--promote-anyway"]
    )
    assert res.exit_code == 0, res.output
    assert (env / "m2" / "LATEST").read_text().strip() == version  # same data, same version


def test_beats_rules_is_strict() -> None:
    assert beats_rules(0.51, 0.50)
    assert not beats_rules(0.50, 0.50)
    assert not beats_rules(0.40, 0.44)


def test_evaluate_scores_the_saved_model(env: Path) -> None:
    res = runner.invoke(
        app,
        ["ai", "train", *RANGE[:2], "--to", "2025-03-05", "--run-id", RUN_ID, "--promote-anyway"],
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["ai", "evaluate", "--from", "2025-03-06", "--to", "2025-03-06"])
    assert res.exit_code == 0, res.output
    assert "2025-03-06..2025-03-06" in res.stdout
    assert "rule baseline" in res.stdout


def test_missing_dsn_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SCALPFLOW_PG_DSN", raising=False)
    res = runner.invoke(app, ["ai", "train", *RANGE])
    assert res.exit_code == 1
    assert "SCALPFLOW_PG_DSN" in res.stderr
    assert "Traceback" not in res.output
    assert not (tmp_path / "models").exists()


def test_unreachable_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCALPFLOW_PG_DSN", "postgresql://nobody:secret@127.0.0.1:1/none")
    res = runner.invoke(app, ["ai", "train", *RANGE])
    assert res.exit_code == 1
    assert "cannot connect to PostgreSQL" in res.stderr
    assert "secret" not in res.output
    assert "Traceback" not in res.output


def test_too_few_rows_and_empty_ranges(env: Path) -> None:
    res = runner.invoke(app, ["ai", "train", *RANGE, "--min-rows", "100000"])
    assert res.exit_code == 1
    assert "too few rows" in res.stderr
    res = runner.invoke(app, ["ai", "train", "--from", "2024-01-01", "--to", "2024-01-31"])
    assert res.exit_code == 1
    assert "no 1m candles for token 26000" in res.stderr
    res = runner.invoke(app, ["ai", "train", "--from", "2025-03-06", "--to", "2025-03-03"])
    assert res.exit_code == 1
    assert "before --from" in res.stderr
    res = runner.invoke(app, ["ai", "evaluate", *RANGE, "--models-dir", "nowhere"])
    assert res.exit_code == 1
    assert "LATEST" in res.stderr
