"""``scalpflow ai``: train and evaluate the regime classifier from candles in PostgreSQL.

Mounted by flows/cli/app.py through ``register(app, feed_app)``.

scalpflow ai train --from 2026-01-05 --to 2026-03-31     walk-forward report, saved model
scalpflow ai evaluate --from 2026-04-01 --to 2026-04-30  saved model vs the rules on a range

Features are computed over the whole series in time order, as the live flow sees its bars
(indicators run on across the overnight gap); labels never span two sessions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, NoReturn

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from connectors.files.model_store import ModelStoreError, load_model, save_model
from connectors.postgres.candle_store import CandleSeries, load_candles
from connectors.postgres.db import DatabaseError
from flows.config.settings import Settings
from flows.errors import FlowError
from operators.ai.regime import (
    REGIMES,
    FloatArray,
    IntArray,
    RegimeConfig,
    WalkForwardReport,
    confusion_matrix,
    extract_features,
    forward_labels,
    rule_classify,
    train,
    valid_rows,
    walk_forward,
)

err_console = Console(stderr=True)

ai_app = typer.Typer(help="Regime classifier: train and evaluate from stored candles.")


class AiCliError(FlowError):
    """A user-facing problem: printed as one line, exit code 1."""


def _fail(message: str) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(code=1)


# ------------------------------------------------------------------------------- shared code
@dataclass(frozen=True)
class Dataset:
    """Feature matrix and labels over a candle series, plus the rows usable for learning."""

    features: FloatArray
    labels: IntArray
    sessions: int

    @property
    def mask(self) -> np.ndarray:
        return valid_rows(self.features, self.labels)

    @property
    def rows(self) -> int:
        return int(self.mask.sum())


def build_dataset(series: CandleSeries, cfg: RegimeConfig) -> Dataset:
    """Features over the series in time order; labels within each IST session."""
    features = extract_features(series.high, series.low, series.close, series.volume, cfg)
    labels = forward_labels(series.close, cfg, sessions=series.session)
    return Dataset(features, labels, len(series.sessions))


def _parse_day(value: str, flag: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        msg = f"{flag} must be a date YYYY-MM-DD, got {value!r}"
        raise AiCliError(msg) from None


def _load(
    token: str, interval: str, start: str, end: str, run_id: str | None
) -> tuple[CandleSeries, date, date]:
    dsn = Settings().dsn()
    if not dsn:
        msg = "set SCALPFLOW_PG_DSN to the PostgreSQL with the candles (`scalpflow infra up`)"
        raise AiCliError(msg)
    lo, hi = _parse_day(start, "--from"), _parse_day(end, "--to")
    if hi < lo:
        msg = f"--to {hi} is before --from {lo}"
        raise AiCliError(msg)
    try:
        series = load_candles(dsn, token, interval, lo, hi, run_id=run_id)
    except DatabaseError as exc:
        raise AiCliError(str(exc)) from exc
    if len(series) == 0:
        scope = f" in run {run_id!r}" if run_id else ""
        msg = f"no {interval} candles for token {token}{scope} between {lo} and {hi}"
        raise AiCliError(msg)
    return series, lo, hi


def _check_rows(data: Dataset, candles: int, min_rows: int) -> None:
    if data.rows < min_rows:
        msg = (
            f"too few rows: {data.rows} labelled minutes from {candles} candles in "
            f"{data.sessions} session(s), need at least {min_rows} (widen --from/--to or lower "
            "--min-rows)"
        )
        raise AiCliError(msg)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _confusion_table(title: str, confusion: list[list[int]]) -> Table:
    table = Table(title=title)
    table.add_column("true \\ predicted")
    for name in REGIMES:
        table.add_column(name, justify="right")
    for name, row in zip(REGIMES, confusion, strict=True):
        table.add_row(name, *(str(v) for v in row))
    return table


def _report_tables(report: WalkForwardReport) -> list[Table]:
    folds = Table(title="walk-forward (out of sample, labels = observed regime)")
    for col in ("fold", "train rows", "test rows", "model accuracy", "rule baseline"):
        folds.add_column(col, justify="right")
    for i, f in enumerate(report.folds, start=1):
        folds.add_row(
            str(i), str(f.train_rows), str(f.test_rows), _pct(f.accuracy), _pct(f.rule_accuracy)
        )
    folds.add_row(
        "overall",
        "",
        str(sum(f.test_rows for f in report.folds)),
        _pct(report.accuracy),
        _pct(report.rule_accuracy),
        style="bold",
    )
    return [folds, _confusion_table("confusion matrix (model, all folds)", report.confusion)]


def _metadata_config(models_dir: Path, version: str) -> RegimeConfig:
    """The RegimeConfig a model was trained with (from its metadata; defaults if absent)."""
    meta_path = models_dir / f"regime-{version}.json"  # layout documented in model_store
    try:
        meta: dict[str, Any] = json.loads(meta_path.read_text())
        return RegimeConfig(**meta["regime_config"])
    except (OSError, ValueError, KeyError, TypeError):
        return RegimeConfig()


# ------------------------------------------------------------------------------- options
DayFrom = Annotated[str, typer.Option("--from", help="First IST trading date (YYYY-MM-DD).")]
DayTo = Annotated[str, typer.Option("--to", help="Last IST trading date, inclusive.")]
Token = Annotated[str, typer.Option(help="Index token whose candles describe the regime.")]
Interval = Annotated[str, typer.Option(help="Candle interval as stored (1m).")]
RunId = Annotated[
    str | None, typer.Option(help="Only candles of this run (default: any run, one per minute).")
]
ModelsDir = Annotated[Path, typer.Option(help="Directory of model files.")]


@ai_app.command("train")
def train_cmd(
    start: DayFrom,
    end: DayTo,
    underlying_token: Token = "26000",
    interval: Interval = "1m",
    run_id: RunId = None,
    seed: Annotated[int, typer.Option(help="Random seed: same data and seed, same model.")] = 0,
    folds: Annotated[int, typer.Option(min=1, help="Walk-forward test folds.")] = 4,
    models_dir: ModelsDir = Path("models"),
    min_rows: Annotated[
        int, typer.Option(min=1, help="Fewest labelled minutes worth training on.")
    ] = 500,
    promote_anyway: Annotated[
        bool,
        typer.Option(
            "--promote-anyway",
            help="Point LATEST at the new model even if it does not beat the rules.",
        ),
    ] = False,
) -> None:
    """Train the regime classifier on stored candles: walk-forward report, then save.

    The model becomes LATEST (what flows load) only if it beats the rule baseline on the
    walk-forward folds, or with ``--promote-anyway``.
    """
    cfg = RegimeConfig()
    out = Console()
    try:
        series, lo, hi = _load(underlying_token, interval, start, end, run_id)
        data = build_dataset(series, cfg)
        _check_rows(data, len(series), min_rows)
        try:
            report = walk_forward(data.features, data.labels, seed, n_folds=folds, cfg=cfg)
            model = train(data.features, data.labels, seed)
        except ValueError as exc:
            raise AiCliError(str(exc)) from exc
        metadata = {
            "token": underlying_token,
            "interval": interval,
            "from": lo.isoformat(),
            "to": hi.isoformat(),
            "run_id": run_id,
            "sessions": data.sessions,
            "candles": len(series),
            "regime_config": cfg.model_dump(),
            "config_hash": cfg.config_hash(),
            "walk_forward": report.to_dict(),
        }
        beats = beats_rules(report.accuracy, report.rule_accuracy)
        try:
            info = save_model(model, models_dir, metadata, promote=beats or promote_anyway)
        except (ModelStoreError, OSError) as exc:
            msg = f"cannot save the model in {models_dir}: {exc}"
            raise AiCliError(msg) from exc
    except AiCliError as exc:
        _fail(str(exc))
    out.print(
        f"{len(series)} candles, {data.sessions} session(s) {lo}..{hi}, "
        f"{data.rows} labelled minutes, seed {seed}"
    )
    for table in _report_tables(report):
        out.print(table)
    verdict = "beats" if beats else "does NOT beat"
    out.print(
        f"accuracy {_pct(report.accuracy)} vs rule baseline {_pct(report.rule_accuracy)}: "
        f"the model {verdict} the rules"
    )
    out.print(f"model {info.version} saved to {info.model_path}", soft_wrap=True)
    out.print(f"sha256 {info.sha256}", soft_wrap=True)
    if beats or promote_anyway:
        out.print(f"promoted: {models_dir / 'LATEST'} now points at {info.version}", soft_wrap=True)
    else:
        out.print(
            f"NOT promoted: LATEST unchanged (flows keep their model); "
            f"--promote-anyway to use {info.version} regardless",
            style="yellow",
            soft_wrap=True,
        )


def beats_rules(model_accuracy: float, rule_accuracy: float) -> bool:
    """A model earns promotion only by scoring strictly above the rule baseline."""
    return model_accuracy > rule_accuracy


@ai_app.command("evaluate")
def evaluate_cmd(
    start: DayFrom,
    end: DayTo,
    models_dir: ModelsDir = Path("models"),
    model_version: Annotated[
        str | None, typer.Option(help="Model version (default: the LATEST one).")
    ] = None,
    underlying_token: Token = "26000",
    interval: Interval = "1m",
    run_id: RunId = None,
    min_rows: Annotated[int, typer.Option(min=1, help="Fewest labelled minutes to score.")] = 50,
) -> None:
    """Score a saved model against the observed regimes of a date range, next to the rules."""
    out = Console()
    try:
        try:
            model = load_model(models_dir, model_version)
        except ModelStoreError as exc:
            raise AiCliError(str(exc)) from exc
        cfg = _metadata_config(models_dir, model.version)
        series, lo, hi = _load(underlying_token, interval, start, end, run_id)
        data = build_dataset(series, cfg)
        _check_rows(data, len(series), min_rows)
    except AiCliError as exc:
        _fail(str(exc))
    x, truth = data.features[data.mask], data.labels[data.mask]
    pred = model.predict(x)
    rule = rule_classify(x, cfg)
    accuracy = float((pred == truth).mean())
    rule_accuracy = float((rule == truth).mean())
    out.print(
        f"model {model.version} on {lo}..{hi}: {data.rows} labelled minutes, "
        f"{data.sessions} session(s)",
        soft_wrap=True,
    )
    out.print(_confusion_table("confusion matrix (model)", confusion_matrix(truth, pred)))
    out.print(f"accuracy {_pct(accuracy)} vs rule baseline {_pct(rule_accuracy)}")


def register(app: typer.Typer, feed_app: typer.Typer) -> None:
    """Mount ``scalpflow ai``; ``feed_app`` is unused (the hook is shared by every sub-app)."""
    del feed_app
    app.add_typer(ai_app, name="ai")


if __name__ == "__main__":
    ai_app()
