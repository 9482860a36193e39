"""Quantor-MTFuzz command line: one function per mode.

    python core/main.py --mode backtest [options]
    quantor --mode data chain --date 2018-03-01

Every user error (bad option, bad file, unreachable data) is printed as one line on stderr
with exit code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

if __package__ in (None, ""):  # run as `python core/main.py`: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.config import AppConfig, build_config, read_config_file  # noqa: E402
from core.dto import QuantorError  # noqa: E402


def _timeframes(text: str) -> tuple[int, ...]:
    """``1,5,15`` -> (1, 5, 15); ValueError on anything but comma-separated whole minutes."""
    parts = [x.strip() for x in text.split(",") if x.strip()]
    if not parts or not all(x.isdigit() for x in parts):
        raise ValueError(text)
    return tuple(int(x) for x in parts)


_timeframes.__doc__ = "comma-separated whole minutes such as 1,5,15"


def _event_kinds(text: str) -> tuple[str, ...]:
    """``fomc,cpi`` -> ("fomc", "cpi"); ValueError on an unknown kind."""
    parts = tuple(x.strip().lower() for x in text.split(",") if x.strip())
    if not parts or any(x not in ("fomc", "cpi") for x in parts):
        raise ValueError(text)
    return parts


_event_kinds.__doc__ = "comma-separated event kinds from fomc, cpi"


def _phases(text: str) -> tuple[int, ...]:
    """``1,3`` -> (1, 3); ValueError on anything but comma-separated whole numbers."""
    parts = [x.strip() for x in text.split(",") if x.strip()]
    if not parts or not all(x.isdigit() for x in parts):
        raise ValueError(text)
    return tuple(int(x) for x in parts)


_TYPE_NAMES: dict[Any, str] = {int: "whole number", float: "number", _timeframes: "comma-separated list of "
                               "whole minutes such as 1,5,15", _phases: "comma-separated list of phases 1-6 "
                               "such as 1,3", _event_kinds: "comma-separated list of fomc, cpi"}

# (group, flag, dotted config path, type, help) — the command line only overrides what it is given.
_VALUE_OPTIONS: list[tuple[str, str, str, Callable[[str], Any], str]] = [
    ("run", "--seed", "run.seed", int, "random seed (default 7)"),
    ("run", "--out", "run.out", str, "output folder (default reports/<run-id>/)"),
    ("backtest", "--bt-start", "backtest.start", str, "first day YYYY-MM-DD (default: last full year of the data)"),
    ("backtest", "--bt-end", "backtest.end", str, "last day YYYY-MM-DD"),
    ("backtest", "--bt-cash", "backtest.cash", float, "starting capital $ (default 25000)"),
    ("backtest", "--bt-samples", "backtest.samples", int, "keep only the last N bars (default 0 = all)"),
    ("backtest", "--entry-time", "backtest.entry_time", str,
     "daily entry check HH:MM New York, a bar close inside the session (default 10:00)"),
    ("backtest", "--fill-model", "backtest.fill_model", str, "per-leg fill price (default fraction)"),
    ("data source", "--data-source", "data.source", str, "where bars and chains come from (default embedded)"),
    ("data source", "--spot-data", "data.spot_data", str, "vendor bar file, CSV or Parquet (implies files)"),
    ("data source", "--options-data", "data.options_data", str, "vendor option-chain file, CSV or Parquet"),
    ("data source", "--vix-data", "data.vix_data", str, "vendor VIX file (date, vix)"),
    ("data source", "--chain-max-lag", "data.chain_max_lag_seconds", float,
     "vendor chains: seconds a snapshot stays fresh (default 600 for SPY; snapshot spacing for data-export folders)"),
    ("data source", "--chain-max-stale", "data.chain_max_stale_fraction", float,
     "vendor chains: share of bars allowed without a fresh snapshot (default 0.2)"),
    ("strategy", "--structure", "strategy.structure", str, "structure to open (default iron_condor)"),
    ("strategy", "--crash-mode", "strategy.crash_mode", str,
     "with --use-selector, CRASH_MODE: stand_aside (default) or long_put"),
    ("filters and exits", "--on-dte", "exits.on_dte", str,
     "at the DTE exit: close (default) or roll to the next expiry"),
    ("filters and exits", "--on-breakout", "exits.on_breakout", str,
     "on a Bollinger breakout through a short strike: close (default) or adjust the tested side"),
    ("filters and exits", "--intraday-exit-time", "exits.intraday_exit_time", str,
     "same-day expiries: close at HH:MM New York (default: settle at the close)"),
    ("filters and exits", "--event-blackout", "gates.event_blackout_sessions", int,
     "no new entries within N sessions before an FOMC/CPI day (default off)"),
    ("filters and exits", "--event-close", "gates.event_close_sessions", int,
     "close every position N sessions before an FOMC/CPI day (default off)"),
    ("filters and exits", "--event-kinds", "gates.event_kinds", _event_kinds,
     "events to respect: fomc,cpi (default both)"),
    ("strategy", "--underlying", "strategy.underlying", str, "underlying symbol (default SPY)"),
    ("strategy", "--quantity", "strategy.quantity", int, "contracts when sizing is static (default 1)"),
    ("strategy", "--dte-min", "strategy.dte_min", int, "minimum days to expiry (default 30)"),
    ("strategy", "--dte-max", "strategy.dte_max", int, "maximum days to expiry (default 45)"),
    ("strategy", "--delta-low", "strategy.delta_low", float, "short strike |delta| band low (default 0.10)"),
    ("strategy", "--delta-high", "strategy.delta_high", float, "short strike |delta| band high (default 0.25)"),
    ("strategy", "--wing-min", "strategy.wing_min", float, "minimum wing width $ (default 5)"),
    ("strategy", "--wing-max", "strategy.wing_max", float, "maximum wing width $ (default 10)"),
    ("strategy", "--min-credit-ratio", "strategy.min_credit_ratio", float,
     "credit / wing width at entry (default 0.15)"),
    ("strategy", "--max-positions", "strategy.max_positions", int, "concurrent positions (default 3)"),
    ("strategy", "--max-alloc", "strategy.max_alloc", float, "max fraction of equity at risk (default 0.15)"),
    ("filters and exits", "--ivr-min", "filters.ivr_min", float, "minimum IV rank to enter (default 0)"),
    ("filters and exits", "--vix-max", "filters.vix_max", float, "maximum VIX to enter (default 25)"),
    ("filters and exits", "--profit-pct", "exits.profit_pct", float,
     "profit target, fraction of the credit (default 0.50)"),
    ("filters and exits", "--loss-multiple", "exits.loss_multiple", float,
     "stop when the loss reaches this x credit (default 1.5)"),
    ("filters and exits", "--max-hold-days", "exits.max_hold_days", int, "maximum holding days (default 14)"),
    ("intelligence", "--mtf-timeframes", "mtf.timeframes", _timeframes,
     "comma-separated minutes from 1, 5, 15, 60 (default 1,5,15)"),
    ("intelligence", "--mtf-consensus-min", "mtf.consensus_min", float, "neutral band low (default 0.40)"),
    ("intelligence", "--mtf-consensus-max", "mtf.consensus_max", float, "neutral band high (default 0.60)"),
    ("intelligence", "--position-size-pct", "fuzzy.position_size_pct", float,
     "risk budget per trade (default 0.05)"),
    ("intelligence", "--hedge-threshold", "hedge.hedge_threshold", float,
     "|net delta per contract| that triggers the hedge (default 0.10)"),
    ("intelligence", "--model", "forecaster.model", str, "forecaster checkpoint (default models/mamba_active.pth)"),
    ("intelligence", "--mamba-d-model", "forecaster.d_model", int,
     "train: forecaster width (inference reads the checkpoint)"),
    ("intelligence", "--mamba-layers", "forecaster.layers", int,
     "train: forecaster depth (inference reads the checkpoint)"),
    ("optimizer", "--sampler", "optimizer.sampler", str, "grid (every point, default) or tpe (Optuna TPE)"),
    ("optimizer", "--trials", "optimizer.trials", int, "tpe: points per phase (default 60)"),
    ("optimizer", "--phases", "optimizer.phases", _phases, "phases to run, e.g. 1,3 (default 1,2,3,4,5,6)"),
    ("optimizer", "--workers", "optimizer.workers", int, "worker processes (default: the CPU count)"),
    ("optimizer", "--executor", "optimizer.executor", str, "process (default) or ray"),
    ("optimizer", "--ray-address", "optimizer.ray_address", str,
     "Ray cluster to join (default: RAY_ADDRESS, else a local Ray)"),
    ("optimizer", "--min-trades", "optimizer.min_trades", int, "fewer closed trades score worst (default 10)"),
    ("optimizer", "--oos-start", "optimizer.oos_start", str, "out-of-sample start (default: day after --bt-end)"),
    ("optimizer", "--oos-end", "optimizer.oos_end", str, "out-of-sample end (default: end of the data)"),
    ("optimizer", "--walk-forward", "optimizer.walk_forward", int, "K anchored walk-forward folds (default 0)"),
    ("optimizer", "--verify", "optimizer.verify", int,
     "evaluated sets re-run on the reference engine (default 20)"),
]

# (group, flag, dotted path, value stored when given, help)
_FLAG_OPTIONS: list[tuple[str, str, str, bool, str]] = [
    ("run", "--no-plot", "run.no_plot", True, "skip charts and the PDF report"),
    ("run", "--no-progress", "run.progress", False, "hide progress lines and bars"),
    ("run", "--force", "run.force", True,
     "replace a previous run folder of this tool (never one holding other files), overwrite an existing --model in "
     "--mode train"),
    ("backtest", "--entry-every-bar", "backtest.entry_every_bar", True, "evaluate entries on every bar"),
    ("filters and exits", "--no-liquidity-gate", "filters.liquidity_gate", False, "disable the liquidity gate"),
    ("intelligence", "--use-mtf", "mtf.use_mtf", True, "compute the multi-timeframe consensus"),
    ("intelligence", "--no-mtf-filter", "mtf.use_filter", False,
     "keep the consensus as a factor but do not gate entries"),
    ("intelligence", "--use-fuzzy", "fuzzy.use_fuzzy", True, "fuzzy confidence sizing Q = floor(Q0 x F_t)"),
    ("intelligence", "--no-fuzzy", "fuzzy.use_fuzzy", False, "static sizing (--quantity contracts)"),
    ("intelligence", "--dynamic-sizing", "fuzzy.dynamic_sizing", True,
     "Q = floor(Q0 x F_t x (1 - sigma*)); implies --use-fuzzy"),
    ("intelligence", "--enable-hedge", "hedge.enable_hedge", True, "delta hedge with shares"),
    ("strategy", "--use-selector", "strategy.use_selector", True,
     "open the structure the regime selects (calendar, wide condor, broken-wing butterfly, ...)"),
    ("strategy", "--selector-forecast", "strategy.selector_forecast", True,
     "with --use-selector: a trend regime needs the forecast to agree"),
    ("intelligence", "--use-neural", "forecaster.use_neural", True,
     "blend the forecaster into F_t (acts via fuzzy sizing/score)"),
]

OPTION_NAMES: dict[str, str] = {**{path: flag for _g, flag, path, _t, _h in _VALUE_OPTIONS},
                                 **{path: flag for _g, flag, path, _v, _h in _FLAG_OPTIONS}}


def _choices() -> dict[str, list[str]]:
    """Allowed values shown in --help (the config validates them)."""
    from core.dto import FillModelKind, Structure

    return {"--fill-model": [k.value for k in FillModelKind], "--structure": [k.value for k in Structure],
            "--data-source": ["embedded", "synthetic", "files"]}


EXAMPLES = """\
modes and examples:
  backtest   python core/main.py --mode backtest --bt-start 2017-01-03 --bt-end 2017-12-29
             python core/main.py --mode backtest --use-mtf --use-fuzzy --config my.toml
  data       python core/main.py --mode data describe
             python core/main.py --mode data chain --date 2018-03-01 --dte-min 30 --dte-max 45
             python core/main.py --mode data bars --date 2018-07-03 --tf 5
             python core/main.py --mode data export --start 2018-03-01 --end 2018-03-30 --out exp/
             python core/main.py --mode data download --source alpaca --symbols SPY --start 2024-03-01
                 --end 2024-03-29 --timeframe 5Min --options --out dl/
             python core/main.py --mode data expand --options eod.csv --spot spy_5min.csv --tf 5 --out exp/
             python core/main.py --mode data pipeline --config pipeline.toml
  stress     python core/main.py --mode stress --as-of 2018-03-15 --bt-start 2018-02-01
  benchmark  python core/main.py --mode benchmark
  report     python core/main.py --mode report --run reports/<run-id>
  train      python core/main.py --mode train --start 1999-01-01 --end 2016-12-31 --epochs 12
  optimize   python core/main.py --mode optimize --phases 1,3 --workers 2 --min-trades 15
             python core/main.py --mode optimize --sampler tpe --trials 80 --executor ray
             python core/main.py --mode optimize --resume reports/opt-<id>
  live       python core/main.py --mode live --alpaca --once --dry-run
             python core/main.py --mode live --alpaca

Precedence: command line > --config FILE (TOML or YAML) > defaults; `python config.template.py`
prints every config key with its default and allowed range. Times are New York (America/New_York).
"""
GROUP_TITLES = {
    "run": "run options (every mode)", "backtest": "backtest (also stress, benchmark)",
    "data source": "data source (every mode)", "strategy": "strategy", "filters and exits": "entry filters and exits",
    "intelligence": "intelligence layers: multi-timeframe, fuzzy sizing, hedge, forecaster",
    "optimizer": "--mode optimize (in-sample: --bt-start/--bt-end)",
}


METAVARS = {"--bt-start": "DATE", "--bt-end": "DATE", "--out": "DIR", "--entry-time": "HH:MM", "--spot-data": "FILE",
            "--options-data": "FILE", "--vix-data": "FILE", "--underlying": "SYMBOL", "--mtf-timeframes": "LIST",
            "--model": "FILE", "--phases": "LIST", "--oos-start": "DATE", "--oos-end": "DATE",
            "--ray-address": "ADDRESS", "--sampler": "{grid,tpe}", "--executor": "{process,ray}"}
USAGE = "quantor [--mode MODE] [COMMAND] [options]   (or: python core/main.py ...; see the examples below)"


class UsageError(Exception):
    """A command-line syntax error (unknown option, missing value): one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises ``UsageError`` (one line with a suggestion) instead of printing usage."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(_with_suggestion(message, self))


def _with_suggestion(message: str, parser: argparse.ArgumentParser) -> str:
    """Add "did you mean --x" for a misspelt option or choice (difflib, cutoff 0.6)."""
    options = [s for s in parser._option_string_actions if s.startswith("--")]
    if message.startswith("unrecognized arguments:"):
        parts = []
        for token in message.split(":", 1)[1].split():
            close = difflib.get_close_matches(token.split("=")[0], options, n=1, cutoff=0.6)
            what = "unknown option" if token.startswith("-") else "unexpected argument"
            parts.append(f"{what} {token}" + (f"; did you mean {close[0]}?" if close else ""))
        return f"{'; '.join(parts)} (see --help)"
    hint = ""
    m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if m:
        allowed = [c.strip(" '") for c in m.group(2).split(",")]
        close = difflib.get_close_matches(m.group(1), allowed, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]}?" if close else ""
    return f"{message}{hint} (see --help)"


def build_parser(modes: Sequence[str]) -> argparse.ArgumentParser:
    parser = _Parser(prog="quantor", usage=USAGE,
                     description="Quantor-MTFuzz: SPY iron-condor research from a terminal.", epilog=EXAMPLES,
                     formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    parser.add_argument("--mode", choices=list(modes), default="backtest", help="job to run (default backtest)")
    parser.add_argument("command", nargs="?", default=None, metavar="COMMAND",
                        help="data mode only: describe | chain | bars | export (default describe)")
    parser.add_argument("--config", metavar="FILE", help="TOML or YAML config file (the command line overrides it)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    choices = _choices()
    groups: dict[str, argparse._ArgumentGroup] = {}
    for group, flag, path, typ, help_text in _VALUE_OPTIONS:
        target = groups.setdefault(group, parser.add_argument_group(GROUP_TITLES[group]))
        metavar = METAVARS.get(flag, "N" if typ is int else "X" if typ is float else "VALUE")
        if flag in choices:
            metavar = "{" + ",".join(choices[flag]) + "}"
        target.add_argument(flag, dest=path, default=argparse.SUPPRESS, help=help_text, metavar=metavar)
    for group, flag, path, value, help_text in _FLAG_OPTIONS:
        target = groups.setdefault(group, parser.add_argument_group(GROUP_TITLES[group]))
        target.add_argument(flag, dest=path, action="store_const", const=value, default=argparse.SUPPRESS,
                            help=help_text)
    _mode_arguments(parser)
    return parser


def _mode_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("--mode data")
    data.add_argument("--date", metavar="DATE", help="chain, bars: session date YYYY-MM-DD")
    data.add_argument("--time", default="10:00", metavar="HH:MM", help="chain: time of day, New York (default 10:00)")
    data.add_argument("--tf", default="5", metavar="MIN|D", help="bars: timeframe minutes 1, 5, 15, 60 or D for "
                      "the daily bar (default 5)")
    data.add_argument("--format", dest="fmt", default="table", choices=["table", "csv", "json"],
                      help="chain, bars: output format {table,csv,json} (default table)")
    data.add_argument("--strikes", default=None, metavar="N|all",
                      help="chain: strikes either side of spot per expiry (default 10 in the table, all in csv/json)")
    data.add_argument("--options", dest="options", metavar="EOD_FILE", nargs="?", const=True,
                      help="expand: end-of-day option chain file (CSV/Parquet) to expand to intraday quotes; "
                           "download: also fetch option contracts and option bars")
    data.add_argument("--source", dest="dl_source", choices=["alpaca"], help="download: where from")
    data.add_argument("--symbols", metavar="SPY[,QQQ]", help="download: underlyings, comma-separated")
    data.add_argument("--timeframe", metavar="TF", choices=["1Min", "5Min", "15Min", "1Day"],
                      help="download: bar size")
    data.add_argument("--data-url", dest="data_url", metavar="URL",
                      help="download, live: Alpaca data endpoint override (tests: http://127.0.0.1:PORT)")
    data.add_argument("--spot", dest="spot", metavar="INTRADAY_FILE", help="expand: intraday spot bars (1 or 5 min)")
    data.add_argument("--start", metavar="DATE", help="bars, export, expand, train: first day")
    data.add_argument("--end", metavar="DATE", help="bars, export, train: last day")
    other = parser.add_argument_group("--mode report / stress / train")
    other.add_argument("--run", dest="run_dir", metavar="DIR", help="report: run folder to rebuild")
    other.add_argument("--as-of", dest="as_of", metavar="DATE",
                       help="stress: revalue the backtest's open positions at this date")
    other.add_argument("--epochs", type=int, metavar="N", help="train: epochs (default 12)")
    other.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                       help="train: device {auto,cpu,cuda} (default auto)")
    other.add_argument("--resume", nargs="?", const=True, default=False, metavar="DIR",
                       help="train: continue from the --model checkpoint; optimize: continue the run in DIR")
    other.add_argument("--use-optimizer", action="store_true",
                       help="with --mode backtest: run the optimizer (the same as --mode optimize)")
    other.add_argument("--lookback", type=int, metavar="N", help="train: bars of history per window (default 60)")
    live = parser.add_argument_group("--mode live")
    live.add_argument("--alpaca", action="store_true", help="live: trade on Alpaca (paper unless --live-money)")
    live.add_argument("--live-money", dest="live_money", action="store_true",
                      help="live: real money (also needs live.allow_live_money = true in the config file)")
    live.add_argument("--once", action="store_true", help="live: one decision cycle, then exit")
    live.add_argument("--dry-run", dest="dry_run", action="store_true", help="live: decide and log orders, send none")
    live.add_argument("--broker-url", dest="broker_url", metavar="URL", help="live: Alpaca trading endpoint override")
    live.add_argument("--db", metavar="URL", help="live: ledger database URL (default SQLite in the session folder)")
    live.add_argument("--flatten-on-halt", dest="flatten_on_halt", action="store_true",
                      help="live: close positions when the kill switch halts")
    live.add_argument("--reset-kill-switch", dest="reset_kill_switch", action="store_true",
                      help="live: clear a persisted HALT (after you have looked at why)")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("quantor-mtfuzz")
    except PackageNotFoundError:  # running from a checkout that was not pip-installed
        return "0.1.0 (not installed)"


def _cli_values(ns: argparse.Namespace) -> dict[str, Any]:
    """The config overrides the user typed, converted to their types (ConfigError on junk)."""
    from core.dto import ConfigError

    types = {path: (flag, typ) for _g, flag, path, typ, _h in _VALUE_OPTIONS}
    out: dict[str, Any] = {}
    for key, raw in vars(ns).items():
        if "." not in key:
            continue
        if key in types:
            flag, typ = types[key]
            try:
                out[key] = typ(raw)
            except ValueError:
                kind = _TYPE_NAMES.get(typ, getattr(typ, "__name__", "value"))
                raise ConfigError(f"{flag} {raw!r}: not a valid {kind}") from None
        else:
            out[key] = raw
    if out.get("fuzzy.dynamic_sizing") and out.get("fuzzy.use_fuzzy") is False:
        raise ConfigError("--dynamic-sizing scales the fuzzy size and needs fuzzy sizing: drop --no-fuzzy "
                          "(--dynamic-sizing implies --use-fuzzy)")
    return out


def load_app_config(ns: argparse.Namespace) -> AppConfig:
    file_values = read_config_file(ns.config) if ns.config else None
    cli = _cli_values(ns)
    ns.dte_given = "strategy.dte_min" in cli or "strategy.dte_max" in cli
    ns.d_model_given = "forecaster.d_model" in cli
    ns.layers_given = "forecaster.layers" in cli
    cfg = build_config(file_values, cli, OPTION_NAMES, source="command line", file_path=ns.config)
    if ns.debug and not cfg.run.debug:
        cfg = cfg.model_copy(update={"run": cfg.run.model_copy(update={"debug": True})})
    return cfg


# options that belong to some modes only: (dest, flag, modes, default); given elsewhere they are refused
MODE_OPTIONS: tuple[tuple[str, str, tuple[str, ...], Any], ...] = (
    ("date", "--date", ("data",), None), ("time", "--time", ("data",), "10:00"), ("tf", "--tf", ("data",), "5"),
    ("fmt", "--format", ("data",), "table"), ("start", "--start", ("data", "train"), None),
    ("end", "--end", ("data", "train"), None), ("run_dir", "--run", ("report",), None),
    ("as_of", "--as-of", ("stress",), None), ("strikes", "--strikes", ("data",), None),
    ("options", "--options", ("data",), None), ("spot", "--spot", ("data",), None),
    ("dl_source", "--source", ("data",), None), ("symbols", "--symbols", ("data",), None),
    ("timeframe", "--timeframe", ("data",), None),
    ("epochs", "--epochs", ("train",), None),
    ("device", "--device", ("train",), "auto"), ("resume", "--resume", ("train", "optimize"), False),
    ("lookback", "--lookback", ("train",), None), ("data_url", "--data-url", ("data", "live"), None),
    ("alpaca", "--alpaca", ("live",), False), ("live_money", "--live-money", ("live",), False),
    ("once", "--once", ("live",), False), ("dry_run", "--dry-run", ("live",), False),
    ("broker_url", "--broker-url", ("live",), None), ("db", "--db", ("live",), None),
    ("flatten_on_halt", "--flatten-on-halt", ("live",), False),
    ("reset_kill_switch", "--reset-kill-switch", ("live",), False),
)
BACKTEST_RANGE = {"--start": "--bt-start", "--end": "--bt-end"}


def check_command(ns: argparse.Namespace) -> None:
    """The positional COMMAND belongs to ``--mode data`` only."""
    from core.dto import ConfigError

    if ns.command is not None and ns.mode != "data":
        raise UsageError(f"unexpected argument {ns.command!r}: a command word is only for --mode data "
                         "(describe, chain, bars, export, expand, download, pipeline) (see --help)")
    for dest, flag, modes, default in MODE_OPTIONS:
        value = getattr(ns, dest, default)
        if value != default and ns.mode not in modes:
            hint = f"; for --mode {ns.mode} use {BACKTEST_RANGE[flag]}" if flag in BACKTEST_RANGE and \
                ns.mode in ("backtest", "stress") else ""
            raise UsageError(f"{flag} is only for --mode {' / '.join(modes)}, not --mode {ns.mode}{hint}")
    if ns.mode == "data" and ns.command not in (None, *DATA_COMMANDS):
        close = difflib.get_close_matches(str(ns.command), DATA_COMMANDS, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise ConfigError(f"--mode data {ns.command!r}: choose describe, chain, bars, export, expand, download or "
                          f"pipeline{hint}")


def check_model(cfg: AppConfig, ns: argparse.Namespace) -> None:
    """Load the forecaster checkpoint up front when a mode will use it: a file that is not a
    checkpoint written by ``--mode train`` is a one-line ConfigError naming ``--model``."""
    from core.dto import ConfigError

    neural_modes = ("backtest", "stress", "optimize")
    wanted = (cfg.forecaster.use_neural and ns.mode in neural_modes) or (ns.mode == "train" and ns.resume)
    if not wanted:
        return
    from core.modes.train import resolve_model_path

    path = resolve_model_path(cfg.forecaster.model)
    if not path.is_file():
        fix = "drop --resume to start a new one" if ns.mode == "train" else \
            "train one with --mode train or drop --use-neural"
        raise ConfigError(f"--model {path}: checkpoint not found; {fix}")
    from core.modes.train import load_bundle

    try:
        load_bundle(path)
    except QuantorError as exc:
        raise ConfigError(f"--model {path}: {str(exc).splitlines()[0]}") from exc
    except Exception as exc:  # unpickling / missing keys / shape errors: not one of our checkpoints
        raise ConfigError(f"--model {path}: not a forecaster checkpoint ({type(exc).__name__}); pass a .pth "
                          "written by --mode train") from exc


def mode_backtest(cfg: AppConfig, ns: argparse.Namespace) -> int:
    from core.backtest.run import run_backtest
    from core.outputs.backtest import print_summary, write_outputs

    if cfg.run.out:
        from core.outputs.atomic import check_target

        check_target(cfg.run.out, cfg.run.force)  # refuse before the run, not after it
    result = run_backtest(cfg)
    print_summary(result, write_outputs(result))
    return 0


def mode_data(cfg: AppConfig, ns: argparse.Namespace) -> int:
    """describe | chain --date D | bars --date D (or --start/--end) --tf N | export --start D --end D --out DIR"""
    from core.backtest.market import build_market
    from core.modes.data import run_data_command

    return run_data_command(cfg, ns, lambda: build_market(cfg))


def mode_train(cfg: AppConfig, ns: argparse.Namespace) -> int:
    """Train the DeepMamba forecaster on daily bars of the chosen source."""
    import datetime as dt

    from core.config import ForecasterConfig
    from core.dto import ConfigError
    from core.modes.train import train_forecaster, training_target
    from intelligence.forecaster.train import TrainParams

    explicit = cfg.forecaster.model if cfg.forecaster.model != ForecasterConfig().model else None
    target = training_target(explicit, cfg.run.seed, cfg.run.force, ns.resume)
    fields: dict[str, Any] = {"seed": cfg.run.seed, "device": ns.device, "out": str(target), "resume": ns.resume}
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
    result = train_forecaster(params, bars=bars, source=source, progress=cfg.run.progress, force=cfg.run.force)
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
    from core.live.cli import is_live_session, run_report

    if is_live_session(ns.run_dir):
        return run_report(ns.run_dir)
    return run_report_cli(ns.run_dir)


def mode_live(cfg: AppConfig, ns: argparse.Namespace) -> int:
    """Alpaca paper trading with the backtest's decisions (core/live): 0 ok, 3 halted by the kill switch."""
    from core.dto import ConfigError
    from core.live.cli import run_live

    if not ns.alpaca:
        raise ConfigError("--mode live needs --alpaca (the only live venue); paper unless --live-money")
    return run_live(cfg, ns)


def mode_optimize(cfg: AppConfig, ns: argparse.Namespace) -> int:
    """The six-phase optimizer (core/optimize/cli.py); ``--resume DIR`` continues a run."""
    from core.dto import ConfigError
    from core.optimize.cli import run_optimize

    if ns.resume is True:
        raise ConfigError("--resume needs the optimizer run's folder: --resume reports/opt-<id>")
    return run_optimize(cfg, ns)


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
    "optimize": mode_optimize,
    "live": mode_live,
}


DATA_COMMANDS = ["describe", "chain", "bars", "export", "expand", "download", "pipeline"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(list(MODES))
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        try:
            ns = parser.parse_args(argv)
        except SystemExit as done:  # --help and --version print and stop
            return int(done.code or 0)
        if ns.use_optimizer:
            if ns.mode not in ("backtest", "optimize"):
                raise UsageError(f"--use-optimizer is for --mode backtest (or --mode optimize), not --mode {ns.mode}")
            ns.mode = "optimize"
        if isinstance(ns.resume, str) and ns.mode == "train":
            raise UsageError("--mode train --resume takes no folder (it continues the --model checkpoint)")
        check_command(ns)
        cfg = load_app_config(ns)
        check_model(cfg, ns)
        return MODES[ns.mode](cfg, ns)
    except (QuantorError, UsageError) as exc:
        if debug:
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not a user error: one line unless --debug
        if debug:
            raise
        print(f"internal error: {type(exc).__name__}: {_one_line(exc)} "
              "(rerun with --debug for the traceback and report it)", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return " ".join(text.split()) if text else type(exc).__name__


if __name__ == "__main__":
    raise SystemExit(main())
