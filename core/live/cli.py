"""``--mode live --alpaca`` and ``--mode report --run <session folder>``: the entry points core/main.py calls.

``run_live(cfg, args)`` reads these attributes of ``args`` (argparse names; missing ones take
the default): ``alpaca``, ``live_money``, ``once``, ``dry_run``, ``broker_url``, ``data_url``,
``db``, ``flatten_on_halt``, ``reset_kill_switch``, ``out`` (also ``cfg.run.out``).  Live
parameters come from ``cfg.live`` where the config has them (see ``options_from``), else
their defaults.  Exit codes: 0 done, 2 a usage/config error (one line), 3 the kill switch
halted the session.
"""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path
from typing import Any

from core.broker.alpaca import WalkParams
from core.config import AppConfig
from core.dto import ConfigError
from core.live.clients import Credentials
from core.live.killswitch import KillParams
from core.live.loop import LiveOptions, LiveSession

DEFAULT_SESSION_ROOT = Path("reports") / "live"


def _arg(args: Any, name: str, default: Any = None) -> Any:
    value = getattr(args, name, None)
    return default if value is None else value


def _live(cfg: AppConfig, name: str, default: Any) -> Any:
    value = getattr(cfg.live, name, None)
    return default if value is None else value


def _secret(cfg: AppConfig, name: str) -> str | None:
    value = _live(cfg, name, None)
    if value is not None and hasattr(value, "get_secret_value"):  # pydantic SecretStr: masked in every dump
        value = value.get_secret_value()
    return str(value) if value else None


def options_from(cfg: AppConfig, args: Any) -> LiveOptions:
    paper = not bool(_arg(args, "live_money", False))
    out = _arg(args, "out") or cfg.run.out or str(DEFAULT_SESSION_ROOT / ("paper" if paper else "live-money"))
    walk = WalkParams(edge=float(_live(cfg, "limit_edge", 0.05)), step=float(_live(cfg, "limit_step", 0.05)),
                      max_steps=int(_live(cfg, "limit_max_steps", 4)), wait_s=float(_live(cfg, "step_wait_s", 20.0)),
                      poll_s=float(_live(cfg, "poll_s", 1.0)))
    kill = KillParams(max_orders_per_day=int(_live(cfg, "max_orders_per_day", 40)),
                      max_broker_errors=int(_live(cfg, "max_broker_errors", 8)),
                      stale_after_s=float(_live(cfg, "stale_quote_s", 120.0)),
                      max_daily_drawdown=float(cfg.risk.max_daily_drawdown),
                      kill_file=_live(cfg, "kill_file", None) or str(Path(out) / "KILL"))
    return LiveOptions(
        out=Path(out), paper=paper, once=bool(_arg(args, "once", False) or _live(cfg, "once", False)),
        dry_run=bool(_arg(args, "dry_run", False) or _live(cfg, "dry_run", False)),
        broker_url=_arg(args, "broker_url") or _live(cfg, "broker_url", None),
        data_url=_arg(args, "data_url") or _live(cfg, "data_url", None),
        db=_arg(args, "db") or _live(cfg, "db_url", None),
        flatten_on_halt=bool(_arg(args, "flatten_on_halt", False) or _live(cfg, "flatten_on_halt", False)),
        reset_kill_switch=bool(_arg(args, "reset_kill_switch", False)),
        timeout_s=float(_live(cfg, "timeout_s", 10.0)),
        requests_per_minute=float(_live(cfg, "requests_per_minute", 190.0)), walk=walk, kill=kill,
        bar_delay_s=float(_live(cfg, "bar_delay_s", 3.0)),
        stream=bool(_live(cfg, "stream", True)),
        stream_min_backoff=float(_live(cfg, "stream_min_backoff_s", 1.0)),
        stream_max_backoff=float(_live(cfg, "stream_max_backoff_s", 30.0)),
        read_attempts=int(_live(cfg, "read_attempts", 4)), read_backoff_s=float(_live(cfg, "read_backoff_s", 0.5)),
        max_cycles=_live(cfg, "max_cycles", None))


def check_money(cfg: AppConfig, args: Any) -> None:
    """Real money needs both ``--live-money`` and ``live.allow_live_money = true``."""
    if not _arg(args, "live_money", False):
        return
    if not bool(_live(cfg, "allow_live_money", False)):
        raise ConfigError("--live-money needs live.allow_live_money = true in the config file as well; "
                          "without both the session trades paper")


def run_live(cfg: AppConfig, args: Any, printer: Any = print) -> int:
    if not _arg(args, "alpaca", False):
        raise ConfigError("--mode live needs --alpaca (the only live venue)")
    check_money(cfg, args)
    opts = options_from(cfg, args)
    creds = Credentials.resolve(_secret(cfg, "api_key_id"), _secret(cfg, "api_secret_key"))
    if not opts.paper:
        banner = "!" * 78
        printer(f"{banner}\n!!  LIVE MONEY: orders go to {opts.broker_url or 'https://api.alpaca.markets'} and trade "
                f"REAL money\n{banner}")
    else:
        printer(f"paper trading on Alpaca ({opts.broker_url or 'https://paper-api.alpaca.markets'})"
                + (" -- DRY RUN: no order is sent" if opts.dry_run else ""))
    printer(f"session folder {opts.out} (ledger, cycles.jsonl, decisions.jsonl, orders.jsonl, status.log); "
            f"kill file {opts.kill.kill_file}")
    session = LiveSession(cfg, opts, creds, printer=printer)
    previous: dict[signal.Signals, Any] = {}

    def on_signal(signum: int, _frame: Any) -> None:
        session.request_stop(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(ValueError):  # not the main thread (tests)
            previous[sig] = signal.signal(sig, on_signal)
    try:
        return session.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_report(run_dir: str, printer: Any = print) -> int:
    """``--mode report --run <live session folder>``: writes ``session_report.md`` / ``.json``."""
    from core.live.report import write_report

    path = Path(run_dir)
    if not (path / "decisions.jsonl").exists() and not (path / "ledger.sqlite").exists():
        raise ConfigError(f"--run {run_dir}: not a live session folder (no decisions.jsonl / ledger.sqlite)")
    out = write_report(path)
    printer(f"session report: {out}")
    return 0


def is_live_session(run_dir: str) -> bool:
    path = Path(run_dir)
    return (path / "sessions.jsonl").exists() or (path / "cycles.jsonl").exists()

