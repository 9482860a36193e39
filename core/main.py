"""Quantor-MTFuzz command line: one function per mode.

    python core/main.py --mode backtest [options]
    quantor --mode data chain --date 2018-03-01

Every user error (bad option, bad file, unreachable data) is printed as one line on stderr
with exit code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python core/main.py`: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.config import AppConfig, build_config, read_config_file  # noqa: E402
from core.dto import QuantorError  # noqa: E402

# (flag, dotted config path, type, help) — the command line only overrides what it is given.
_VALUE_OPTIONS: list[tuple[str, str, Callable[[str], Any], str]] = [
    ("--seed", "run.seed", int, "random seed (default 7)"),
    ("--out", "run.out", str, "output folder (default reports/<run-id>/)"),
    ("--bt-start", "backtest.start", str, "first day YYYY-MM-DD (default: last full year of the data)"),
    ("--bt-end", "backtest.end", str, "last day YYYY-MM-DD"),
    ("--bt-cash", "backtest.cash", float, "starting capital (default 25000)"),
    ("--bt-samples", "backtest.samples", int, "keep only the last N bars (default 0 = all)"),
    ("--entry-time", "backtest.entry_time", str, "daily entry check time ET (default 10:00)"),
    ("--fill-model", "backtest.fill_model", str, "mid | fraction | cross (default fraction)"),
    ("--structure", "strategy.structure", str, "iron_condor | put_credit_spread | call_credit_spread"),
    ("--data-source", "data.source", str, "embedded | synthetic | files (default embedded)"),
    ("--spot-data", "data.spot_data", str, "vendor bar file (CSV/Parquet)"),
    ("--options-data", "data.options_data", str, "vendor option-chain file (CSV/Parquet)"),
    ("--vix-data", "data.vix_data", str, "vendor VIX file (date, vix)"),
    ("--underlying", "strategy.underlying", str, "underlying symbol (default SPY)"),
    ("--quantity", "strategy.quantity", int, "contracts when sizing is static (default 1)"),
    ("--dte-min", "strategy.dte_min", int, "minimum days to expiry (default 30)"),
    ("--dte-max", "strategy.dte_max", int, "maximum days to expiry (default 45)"),
    ("--delta-low", "strategy.delta_low", float, "short strike |delta| band low (default 0.10)"),
    ("--delta-high", "strategy.delta_high", float, "short strike |delta| band high (default 0.25)"),
    ("--wing-min", "strategy.wing_min", float, "minimum wing width $ (default 5)"),
    ("--wing-max", "strategy.wing_max", float, "maximum wing width $ (default 10)"),
    ("--min-credit-ratio", "strategy.min_credit_ratio", float, "credit / wing width at entry (default 0.15)"),
    ("--max-positions", "strategy.max_positions", int, "concurrent positions (default 3)"),
    ("--max-alloc", "strategy.max_alloc", float, "max fraction of equity at risk (default 0.15)"),
    ("--ivr-min", "filters.ivr_min", float, "minimum IV rank to enter (default 0)"),
    ("--vix-max", "filters.vix_max", float, "maximum VIX to enter (default 25)"),
    ("--profit-pct", "exits.profit_pct", float, "profit target as fraction of credit (default 0.50)"),
    ("--loss-multiple", "exits.loss_multiple", float, "stop when loss reaches this x credit (default 1.5)"),
    ("--max-hold-days", "exits.max_hold_days", int, "maximum holding days (default 14)"),
    ("--mtf-timeframes", "mtf.timeframes", lambda s: tuple(int(x) for x in s.split(",") if x.strip()),
     "comma-separated minutes (default 1,5,15)"),
    ("--mtf-consensus-min", "mtf.consensus_min", float, "neutral band low (default 0.40)"),
    ("--mtf-consensus-max", "mtf.consensus_max", float, "neutral band high (default 0.60)"),
    ("--position-size-pct", "fuzzy.position_size_pct", float, "risk budget per trade (default 0.05)"),
    ("--hedge-threshold", "hedge.hedge_threshold", float, "|net delta per contract| trigger (default 0.10)"),
    ("--model", "forecaster.model", str, "forecaster checkpoint (default models/mamba_active.pth)"),
    ("--mamba-d-model", "forecaster.d_model", int, "train: forecaster width (inference reads the checkpoint)"),
    ("--mamba-layers", "forecaster.layers", int, "train: forecaster depth (inference reads the checkpoint)"),
]

# (flag, dotted path, value stored when given, help)
_FLAG_OPTIONS: list[tuple[str, str, bool, str]] = [
    ("--no-plot", "run.no_plot", True, "skip charts and the PDF report"),
    ("--no-progress", "run.progress", False, "hide progress bars"),
    ("--entry-every-bar", "backtest.entry_every_bar", True, "evaluate entries on every bar"),
    ("--use-mtf", "mtf.use_mtf", True, "compute the multi-timeframe consensus"),
    ("--no-mtf-filter", "mtf.use_filter", False, "keep the consensus as a factor but do not gate entries"),
    ("--use-fuzzy", "fuzzy.use_fuzzy", True, "fuzzy confidence sizing"),
    ("--no-fuzzy", "fuzzy.use_fuzzy", False, "static sizing"),
    ("--dynamic-sizing", "fuzzy.dynamic_sizing", True, "size Q = floor(Q0 x F_t x (1 - sigma*))"),
    ("--enable-hedge", "hedge.enable_hedge", True, "delta hedge with shares"),
    ("--no-liquidity-gate", "filters.liquidity_gate", False, "disable the liquidity gate"),
    ("--use-neural", "forecaster.use_neural", True, "blend the forecaster into F_t (acts via fuzzy sizing/score)"),
]

OPTION_NAMES: dict[str, str] = {
    **{path: flag for flag, path, _t, _h in _VALUE_OPTIONS}, **{path: flag for flag, path, _v, _h in _FLAG_OPTIONS}}


def build_parser(modes: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quantor", description="Quantor-MTFuzz: SPY iron-condor research")
    parser.add_argument("--mode", choices=list(modes), default="backtest", help="job to run")
    parser.add_argument("command", nargs="?", default=None, help="data mode: describe | chain | bars | export")
    parser.add_argument("--config", help="TOML or YAML config file (command line overrides it)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    for flag, path, typ, help_text in _VALUE_OPTIONS:
        metavar = "DATE" if flag in ("--bt-start", "--bt-end") else "VALUE"
        if typ in (int, float):
            metavar = "N" if typ is int else "X"
        parser.add_argument(flag, dest=path, default=argparse.SUPPRESS, help=help_text, metavar=metavar)
    for flag, path, value, help_text in _FLAG_OPTIONS:
        parser.add_argument(flag, dest=path, action="store_const", const=value, default=argparse.SUPPRESS,
                            help=help_text)
    extra = parser.add_argument_group("mode-specific")
    extra.add_argument("--date", help="data: session date YYYY-MM-DD")
    extra.add_argument("--time", default="10:00", help="data chain: time of day ET (default 10:00)")
    extra.add_argument("--tf", type=int, default=5, help="data bars: timeframe minutes (default 5)")
    extra.add_argument("--format", dest="fmt", default="table", choices=["table", "csv", "json"])
    extra.add_argument("--start", help="data export / train: first day")
    extra.add_argument("--end", help="data export / train: last day")
    extra.add_argument("--run", dest="run_dir", help="report: run folder to rebuild")
    extra.add_argument("--as-of", dest="as_of", help="stress: revalue the backtest's open positions at this date")
    extra.add_argument("--epochs", type=int, help="train: epochs (default 12)")
    extra.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="train: device")
    extra.add_argument("--resume", action="store_true", help="train: continue from the --model checkpoint")
    extra.add_argument("--lookback", type=int, help="train: bars of history per window (default 60)")
    return parser


def _cli_values(ns: argparse.Namespace) -> dict[str, Any]:
    """The config overrides the user typed, converted to their types (ConfigError on junk)."""
    from core.dto import ConfigError

    types = {path: (flag, typ) for flag, path, typ, _ in _VALUE_OPTIONS}
    out: dict[str, Any] = {}
    for key, raw in vars(ns).items():
        if "." not in key:
            continue
        if key in types:
            flag, typ = types[key]
            try:
                out[key] = typ(raw)
            except ValueError:
                raise ConfigError(f"{flag} {raw!r}: not a valid {getattr(typ, '__name__', 'value')}") from None
        else:
            out[key] = raw
    return out


def load_app_config(ns: argparse.Namespace) -> AppConfig:
    file_values = read_config_file(ns.config) if ns.config else None
    source = f"--config {ns.config}" if ns.config else "command line"
    cli = _cli_values(ns)
    ns.dte_given = "strategy.dte_min" in cli or "strategy.dte_max" in cli
    ns.d_model_given = "forecaster.d_model" in cli
    ns.layers_given = "forecaster.layers" in cli
    cfg = build_config(file_values, cli, OPTION_NAMES, source=source)
    if ns.debug and not cfg.run.debug:
        cfg = cfg.model_copy(update={"run": cfg.run.model_copy(update={"debug": True})})
    return cfg


def mode_backtest(cfg: AppConfig, ns: argparse.Namespace) -> int:
    from core.backtest.run import run_backtest
    from core.outputs.backtest import print_summary, write_outputs

    result = run_backtest(cfg)
    print_summary(result, write_outputs(result))
    return 0


def mode_data(cfg: AppConfig, ns: argparse.Namespace) -> int:
    """describe | chain --date D | bars --date D --tf N | export --start D --end D --out DIR"""
    from core.backtest.market import build_market
    from core.dto import ConfigError
    from core.modes import data as data_mode

    command = ns.command or "describe"
    market = build_market(cfg)
    if command == "describe":
        text = data_mode.describe(market)
    elif command in ("chain", "bars"):
        if not ns.date:
            raise ConfigError(f"--mode data {command} needs --date YYYY-MM-DD")
        if command == "chain":
            text = data_mode.chain_table(market, ns.date, ns.time, cfg.strategy.dte_min if ns.dte_given else 0,
                                         cfg.strategy.dte_max if ns.dte_given else 60, ns.fmt)
        else:
            text = data_mode.bars_table(market, ns.date, ns.tf, ns.fmt)
    elif command == "export":
        if not (ns.start and ns.end and cfg.run.out):
            raise ConfigError("--mode data export needs --start D --end D --out DIR")
        text = f"exported to {data_mode.export(market, ns.start, ns.end, cfg.run.out)}"
    else:
        raise ConfigError(f"--mode data {command!r}: choose describe, chain, bars or export")
    print(text)
    return 0


def mode_train(cfg: AppConfig, ns: argparse.Namespace) -> int:
    """Train the DeepMamba forecaster on daily bars of the chosen source."""
    import datetime as dt

    from core.dto import ConfigError
    from core.modes.train import train_forecaster
    from intelligence.forecaster.train import TrainParams

    fields: dict[str, Any] = {"seed": cfg.run.seed, "device": ns.device, "out": cfg.forecaster.model,
                              "resume": ns.resume}
    for flag, name in (("start", "start"), ("end", "end")):
        value = getattr(ns, flag)
        if value:
            try:
                fields[name] = dt.date.fromisoformat(value)
            except ValueError:
                raise ConfigError(f"--{flag} {value!r}: not a date; use YYYY-MM-DD") from None
    if ns.epochs is not None:
        fields["epochs"] = ns.epochs
    if ns.lookback is not None:
        fields["lookback"] = ns.lookback
    if ns.d_model_given:
        fields["d_model"] = cfg.forecaster.d_model
    if ns.layers_given:
        fields["layers"] = cfg.forecaster.layers
    params = TrainParams(**fields)
    bars, source = None, ""
    if cfg.data.source != "embedded":
        from core.backtest.market import build_market

        market = build_market(cfg)
        bars, source = market.daily_bars(params.start, params.end), market.info.name
    result = train_forecaster(params, bars=bars, source=source, progress=cfg.run.progress)
    print(f"checkpoint {result.checkpoint_path}: best epoch {result.best_epoch}, "
          f"best validation loss {result.best_val_loss:.5f}")
    return 0


def mode_stress(cfg: AppConfig, ns: argparse.Namespace) -> int:
    from core.stress.run import run_stress_cli

    return run_stress_cli(cfg, ns.as_of)


def mode_report(cfg: AppConfig, ns: argparse.Namespace) -> int:
    from core.dto import ConfigError
    from core.outputs.pdf import run_report_cli

    if not ns.run_dir:
        raise ConfigError("--mode report needs --run reports/<run-id> (a backtest's output folder)")
    return run_report_cli(ns.run_dir)


def mode_benchmark(cfg: AppConfig, ns: argparse.Namespace) -> int:
    from core.bench.run import run_benchmark_cli

    return run_benchmark_cli(cfg)


MODES: dict[str, Callable[[AppConfig, argparse.Namespace], int]] = {
    "backtest": mode_backtest,
    "data": mode_data,
    "benchmark": mode_benchmark,
    "train": mode_train,
    "stress": mode_stress,
    "report": mode_report,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(list(MODES))
    ns = parser.parse_args(argv)
    try:
        cfg = load_app_config(ns)
        return MODES[ns.mode](cfg, ns)
    except QuantorError as exc:
        if ns.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not a user error: one line unless --debug
        if ns.debug:
            raise
        print(f"internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
              "(rerun with --debug for the traceback and report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
