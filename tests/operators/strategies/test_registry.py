"""Strategy registry, parameter validation and hashing, and the option mapping."""

from __future__ import annotations

import hashlib
import sys
import textwrap
from datetime import date
from pathlib import Path
from typing import ClassVar

import pytest

from operators.strategies.base import (
    EntryPlan,
    Strategy,
    StrategyParams,
    StrategyParamsError,
    StrategyState,
    parse_param_overrides,
)
from operators.strategies.gamma_scalp import GammaScalp
from operators.strategies.momentum_breakout import MomentumBreakout
from operators.strategies.option_map import (
    OptionChain,
    atm_strike,
    nearest_expiry,
    select_option,
    target_strike,
)
from operators.strategies.registry import (
    BUILTINS,
    ENTRY_POINT_GROUP,
    StrategyLoadError,
    available_strategies,
    create_strategy,
    load_strategy_class,
)
from operators.strategies.vwap_reversal import VwapReversal
from tests.operators.strategies.helpers import EXPIRY, EXPIRY2, STEP, bar, ist, make_chain, make_ctx


class AlwaysLong(Strategy[StrategyParams, StrategyState]):
    """A user strategy: goes long on every bar (used through its module path)."""

    name: ClassVar[str] = "always_long"

    def evaluate_bar(self, state, bar, ctx):
        return state, EntryPlan(rights=("CE",), reason="ALWAYS")


class NotAStrategy:
    name = "nope"


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("momentum_breakout", MomentumBreakout),
        ("vwap_reversal", VwapReversal),
        ("gamma_scalp", GammaScalp),
    ],
)
def test_builtins_load_by_name(name: str, cls: type) -> None:
    assert load_strategy_class(name) is cls
    s = create_strategy(name)
    assert isinstance(s, cls)
    assert s.name == name


def test_module_path_loads_a_user_strategy() -> None:
    cls = load_strategy_class("tests.operators.strategies.test_registry:AlwaysLong")
    assert cls is AlwaysLong
    s = cls()
    out = s.on_bar(bar(ist(10, 0), 23_510.0), make_ctx())
    assert [(o.strategy, o.action, o.reason) for o in out] == [("always_long", "ENTRY", "ALWAYS")]


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("no_such_strategy", "unknown strategy"),
        ("tests.operators.strategies.test_registry:Missing", "has no attribute"),
        ("tests.operators.strategies.no_such_module:X", "cannot import"),
        ("tests.operators.strategies.test_registry:NotAStrategy", "not a Strategy"),
    ],
)
def test_bad_specs_fail_with_a_clear_error(spec: str, match: str) -> None:
    with pytest.raises(StrategyLoadError, match=match):
        load_strategy_class(spec)


def test_entry_point_group_loads_an_installed_strategy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real (if tiny) installed distribution declaring a ``scalpflow.strategies`` entry."""
    pkg = tmp_path / "sfplugin_demo"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        textwrap.dedent(
            """
            from operators.strategies.base import Strategy

            class Demo(Strategy):
                name = "demo_plugin"
            """
        )
    )
    dist = tmp_path / "sfplugin_demo-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sfplugin-demo\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\ndemo_plugin = sfplugin_demo:Demo\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert available_strategies()["demo_plugin"] == "sfplugin_demo:Demo"
        s = create_strategy("demo_plugin")
        assert s.name == "demo_plugin"
        assert type(s).__module__ == "sfplugin_demo"
    finally:
        sys.modules.pop("sfplugin_demo", None)
    assert set(BUILTINS) <= set(available_strategies())


def test_params_validate_and_reject_unknown_or_bad_values() -> None:
    s = create_strategy("momentum_breakout", {"target_pct": "0.6", "regimes": ["RANGING"]})
    assert s.params.target_pct == 0.6
    assert s.params.regimes == ("RANGING",)
    for bad in (
        {"target_pc": 1},
        {"target_pct": -1},
        {"rsi_min": 80, "rsi_max": 70},
        {"regimes": ["SIDEWAYS"]},
        {"interval": "5m"},
    ):
        with pytest.raises(StrategyParamsError):
            create_strategy("momentum_breakout", bad)


def test_params_hash_is_stable_and_sensitive() -> None:
    a = MomentumBreakout()
    b = MomentumBreakout({"target_pct": 0.5})
    c = MomentumBreakout({"target_pct": 0.55})
    assert a.params_hash == b.params_hash
    assert a.params_hash != c.params_hash
    assert len(a.params_hash) == 16
    # pinned: the hash must not change between processes or releases for the same values
    assert a.params_hash == MomentumBreakout.Params().params_hash
    canonical = (
        '{"cooldown_s":0.0,"expiry_rank":0,"interval":"1m","regimes":null,'
        '"signal_token":null,"strike_offset":0}'
    )
    assert StrategyParams().params_hash == hashlib.sha256(canonical.encode()).hexdigest()[:16]
    assert a.config_hash != VwapReversal().config_hash


def test_parse_param_overrides() -> None:
    assert parse_param_overrides(
        ["target_pct=0.6", "regimes=null", "interval=1s", 'regimes2=["TRENDING"]']
    ) == {"target_pct": 0.6, "regimes": None, "interval": "1s", "regimes2": ["TRENDING"]}
    with pytest.raises(StrategyParamsError):
        parse_param_overrides(["oops"])


@pytest.mark.parametrize(
    ("price", "atm"),
    [
        (2_350_000, 2_350_000),
        (2_352_499, 2_350_000),
        (2_352_500, 2_350_000),
        (2_352_501, 2_355_000),
        (2_347_600, 2_350_000),
    ],
)
def test_atm_strike_rounds_to_the_nearest_step_ties_down(price: int, atm: int) -> None:
    assert atm_strike(price, STEP) == atm


def test_strike_offset_moves_out_of_the_money_per_right() -> None:
    assert target_strike(2_351_000, STEP, "CE", 2) == 2_360_000
    assert target_strike(2_351_000, STEP, "PE", 2) == 2_340_000
    assert target_strike(2_351_000, STEP, "CE", -1) == 2_345_000


def test_option_lookup_by_price_expiry_and_right() -> None:
    chain = make_chain()
    assert nearest_expiry(chain.instruments, date(2026, 1, 7)) == EXPIRY
    assert nearest_expiry(chain.instruments, date(2026, 1, 14)) == EXPIRY2
    assert nearest_expiry(chain.instruments, date(2026, 1, 21)) is None
    put = select_option(2_351_000, STEP, EXPIRY, chain.instruments, "PE")
    assert put is not None
    assert put.token == "PE23500-0113"
    call = select_option(2_351_000, STEP, EXPIRY2, chain.instruments, "CE", 1)
    assert call is not None
    assert call.token == "CE23550-0120"
    assert select_option(2_600_000, STEP, EXPIRY, chain.instruments, "CE") is None
    inst = chain.select(2_351_000, "CE", date(2026, 1, 7))
    assert inst is not None
    assert (inst.token, inst.strike, inst.expiry) == ("CE23500-0113", 2_350_000, EXPIRY)
    assert chain.select(2_351_000, "CE", date(2026, 1, 30)) is None
    assert chain.by_token("CE23500-0113") == inst


def test_entry_needs_every_leg_to_exist() -> None:
    """Far outside the listed strikes there is nothing to buy: no signal, no trade."""
    s = load_strategy_class("tests.operators.strategies.test_registry:AlwaysLong")()
    assert s.on_bar(bar(ist(10, 0), 30_000.0), make_ctx()) == []
    assert s.state.trade is None


def test_chain_from_instruments_infers_the_strike_step() -> None:
    chain = make_chain()
    built = OptionChain.from_instruments("NIFTY", "26000", chain.instruments)
    assert built.strike_step == STEP
    assert built.select(2_351_000, "PE", date(2026, 1, 7)) == chain.select(
        2_351_000, "PE", date(2026, 1, 7)
    )
    with pytest.raises(ValueError, match="strike step"):
        OptionChain.from_instruments("BANKNIFTY", "26009", chain.instruments)
