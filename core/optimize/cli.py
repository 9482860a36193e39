"""``--mode optimize``: options, in-sample / out-of-sample ranges, the run, its outputs.

``run_optimize(cfg, args) -> int`` is the entry point ``core/main.py`` calls.  Options come
from ``cfg.optimizer`` (typed config, ``[optimizer]`` of a ``--config`` file) and the command
line (``args``: an argparse namespace; an attribute that is missing or None keeps the
config's value).  Exit codes: 0 done; 1 the fast path disagreed with the reference on a
verified sample; 2 bad options (``ConfigError``, one line); 130 interrupted (journal intact).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.config import AppConfig
from core.dto import ConfigError
from core.optimize import outputs as out_files
from core.optimize.executor import make_executor
from core.optimize.fast import WORST_FITNESS
from core.optimize.journal import Journal, fingerprint, read_journal
from core.optimize.search import Evaluator, Interrupted, fitness_of, search
from core.optimize.space import PHASE_NAMES, Space, apply_point, build_space

MIN_OOS_DAYS = 183  # "at least six months held out"
DEFAULT_IS_DAYS = 365


@dataclass(frozen=True, slots=True)
class Options:
    sampler: str = "grid"
    trials: int = 60
    phases: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
    workers: int = 2
    executor: str = "process"
    ray_address: str | None = None
    min_trades: int = 10
    is_start: dt.date = dt.date(2017, 1, 1)
    is_end: dt.date = dt.date(2017, 12, 31)
    oos_start: dt.date = dt.date(2018, 1, 1)
    oos_end: dt.date = dt.date(2018, 12, 31)
    walk_forward: int = 0
    purge_days: int = 30
    verify: int = 20
    top_n: int = 100
    resume: str | None = None
    force: bool = False
    grids: dict[Any, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    walk_forward_mode: str = "anchored"


def _opt(cfg: AppConfig, args: Any, name: str, default: Any) -> Any:
    v = getattr(args, name, None) if args is not None else None
    if v is not None:
        return v
    return getattr(cfg.optimizer, name, default)


def _date(v: Any, flag: str) -> dt.date | None:
    if v is None or isinstance(v, dt.date):
        return v
    try:
        return dt.date.fromisoformat(str(v))
    except ValueError:
        raise ConfigError(f"{flag} {v!r}: not a date; use YYYY-MM-DD") from None


def parse_phases(v: Any) -> tuple[int, ...]:
    if isinstance(v, str):
        try:
            items = [int(x) for x in v.replace(" ", "").split(",") if x]
        except ValueError:
            raise ConfigError(f"--phases {v!r}: give phase numbers 1-6 separated by commas, e.g. --phases 1,3")\
                from None
    else:
        items = [int(x) for x in v]
    bad = [p for p in items if p not in PHASE_NAMES]
    if not items or bad:
        raise ConfigError(f"--phases {v!r}: phases are 1-6 (e.g. --phases 1,3)")
    return tuple(sorted(set(items)))


def resolve_options(cfg: AppConfig, args: Any, data_first: dt.date, data_last: dt.date) -> Options:
    """Every optimizer option, validated (ConfigError: one line, exit 2)."""
    sampler = str(_opt(cfg, args, "sampler", "grid"))
    if sampler not in ("grid", "tpe"):
        raise ConfigError(f"--sampler {sampler}: choose grid or tpe")
    trials = int(_opt(cfg, args, "trials", 60))
    if trials < 1:
        raise ConfigError(f"--trials {trials}: must be >= 1")
    executor = str(_opt(cfg, args, "executor", "process"))
    if executor not in ("process", "ray", "serial"):
        raise ConfigError(f"--executor {executor}: choose process or ray")
    workers_raw = getattr(args, "workers", None) if args is not None else None
    workers = int(workers_raw) if workers_raw is not None else int(getattr(cfg.optimizer, "workers", 0) or 0) \
        or (os.cpu_count() or 1)
    if not 1 <= workers <= 256:
        raise ConfigError(f"--workers {workers}: choose 1 to 256")
    min_trades = int(_opt(cfg, args, "min_trades", 10))
    if min_trades < 0:
        raise ConfigError(f"--min-trades {min_trades}: must be >= 0")
    wf = int(_opt(cfg, args, "walk_forward", 0))
    if not 0 <= wf <= 20:
        raise ConfigError(f"--walk-forward {wf}: choose 0 (off) to 20 folds")
    wf_mode = str(_opt(cfg, args, "walk_forward_mode", "anchored"))
    if wf_mode not in ("anchored", "rolling"):
        raise ConfigError(f"walk_forward_mode {wf_mode!r}: choose anchored or rolling")
    verify = int(_opt(cfg, args, "verify", 20))
    if verify < 0:
        raise ConfigError(f"--verify {verify}: must be >= 0")
    top_n = int(_opt(cfg, args, "top_n", 100))
    phases = parse_phases(_opt(cfg, args, "phases", (1, 2, 3, 4, 5, 6)))
    notes: list[str] = []
    is_start, is_end = cfg.backtest.start, cfg.backtest.end
    oos_start = _date(_opt(cfg, args, "oos_start", None), "--oos-start")
    oos_end = _date(_opt(cfg, args, "oos_end", None), "--oos-end")
    for flag, d in (("--bt-start", is_start), ("--bt-end", is_end), ("--oos-start", oos_start),
                    ("--oos-end", oos_end)):
        if d is not None and not data_first <= d <= data_last:
            raise ConfigError(f"{flag} {d} is outside the data ({data_first} to {data_last}); pick a date inside it")
    if is_end is None:
        is_end = (oos_start - dt.timedelta(days=1)) if oos_start else data_last - dt.timedelta(days=DEFAULT_IS_DAYS)
    if is_start is None:
        is_start = max(data_first, is_end - dt.timedelta(days=DEFAULT_IS_DAYS - 1))
    if is_start >= is_end:
        raise ConfigError(f"in-sample range {is_start} to {is_end} is empty; give --bt-start before --bt-end")
    explicit_oos = oos_start is not None or oos_end is not None
    if oos_start is None:
        oos_start = is_end + dt.timedelta(days=1)
    if oos_end is None:
        oos_end = data_last
    if oos_start >= oos_end:
        raise ConfigError(f"out-of-sample range {oos_start} to {oos_end} is empty; the data end on {data_last}: "
                          "choose an earlier --bt-end or give --oos-start/--oos-end")
    if oos_start <= is_end and oos_end >= is_start:
        raise ConfigError(f"out-of-sample {oos_start} to {oos_end} overlaps in-sample {is_start} to {is_end}; "
                          "hold out a separate range")
    held = (oos_end - oos_start).days + 1
    if held < MIN_OOS_DAYS:
        if not explicit_oos:
            raise ConfigError(f"only {held} days after --bt-end {is_end} are left out of sample; hold out at least "
                              f"six months: choose --bt-end before {data_last - dt.timedelta(days=MIN_OOS_DAYS)} "
                              "or give --oos-start/--oos-end")
        notes.append(f"out-of-sample range is only {held} days (< six months): treat it as a smoke test")
    grids = getattr(cfg.optimizer, "grids", None) or {}
    return Options(sampler, trials, phases, workers, executor, _opt(cfg, args, "ray_address", None), min_trades,
                   is_start, is_end, oos_start, oos_end, wf, int(_opt(cfg, args, "purge_days", 30)), verify, top_n,
                   getattr(args, "resume", None) if args is not None else None,
                   bool(getattr(cfg.run, "force", False) or getattr(args, "force", False)), dict(grids), tuple(notes),
                   wf_mode)


def scope(a: dt.date, b: dt.date) -> dict[str, str]:
    return {"start": a.isoformat(), "end": b.isoformat()}


def walk_forward_folds(start: dt.date, end: dt.date, k: int, purge_days: int, mode: str = "anchored"
                       ) -> list[tuple[dict[str, str], dict[str, str]]]:
    """K folds: the in-sample range cut into K+1 equal blocks; fold i trains on blocks 1..i
    (``anchored``) or on block i alone (``rolling``) and tests on block i+1, starting
    ``purge_days`` after the training end (no position opened in training is still open in the
    test)."""
    days = (end - start).days + 1
    edges = [start + dt.timedelta(days=round(days * j / (k + 1))) for j in range(k + 2)]
    folds = []
    for i in range(1, k + 1):
        train_end = edges[i] - dt.timedelta(days=1)
        test_start = train_end + dt.timedelta(days=1 + purge_days)
        test_end = edges[i + 1] - dt.timedelta(days=1) if i < k else end
        if test_start >= test_end or train_end <= start:
            raise ConfigError(f"--walk-forward {k}: folds of the in-sample range {start} to {end} are too short "
                              f"for a {purge_days}-day purge gap; use fewer folds or a longer range")
        train_start = start if mode == "anchored" else edges[i - 1]
        folds.append((scope(train_start, train_end), scope(test_start, test_end)))
    return folds


def journal_options(base: AppConfig, opts: Options, space: Space) -> dict[str, Any]:
    """What decides the results (a resumed run must match these)."""
    tree = base.to_json_dict()
    for k in ("out", "progress", "debug", "no_plot"):
        tree["run"].pop(k, None)
    tree.pop("optimizer", None)
    tree["backtest"].pop("start", None)
    tree["backtest"].pop("end", None)
    return {"config": tree, "sampler": opts.sampler, "trials": opts.trials if opts.sampler == "tpe" else None,
            "phases": list(opts.phases), "grids": {str(p): {k: list(v) for k, v in space.grids[p].items()}
                                                   for p in opts.phases},
            "min_trades": opts.min_trades, "in_sample": scope(opts.is_start, opts.is_end),
            "out_of_sample": scope(opts.oos_start, opts.oos_end), "walk_forward": opts.walk_forward,
            "purge_days": opts.purge_days, "walk_forward_mode": opts.walk_forward_mode}


RESULT_FREE_OPTIONS = ("workers", "executor", "ray_address")  # options that never change a result


def resumed_run(folder: Path, cfg: AppConfig, args: Any) -> tuple[AppConfig, Options]:
    """The config and options of the run in ``folder`` (its run.json), with this command's
    workers and executor: a resumed run continues exactly the run it resumes."""
    path = folder / "run.json"
    if not folder.is_dir():
        raise ConfigError(f"--resume {folder}: no such folder; pass the folder of an optimizer run")
    try:
        saved = json_load(path)
        base = AppConfig.model_validate(saved["config"])
        raw = dict(saved["options"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"--resume {folder}: its run.json is missing or unreadable ({type(exc).__name__}); "
                          "pass the folder of an optimizer run") from None
    for name in ("is_start", "is_end", "oos_start", "oos_end"):
        raw[name] = dt.date.fromisoformat(raw[name])
    raw["phases"] = tuple(raw["phases"])
    raw["notes"] = tuple(raw.get("notes", ()))
    raw["grids"] = dict(raw.get("grids") or {})  # as the config gave them (build_space reads nested tables)
    for name in RESULT_FREE_OPTIONS:  # this command's (typed, or its config's) where they are set
        given = getattr(args, name, None) if args is not None else None
        if given is None:
            given = getattr(cfg.optimizer, name, None)
        if given is not None:
            raw[name] = given
    raw["resume"], raw["force"] = str(folder), False
    fields = set(Options.__dataclass_fields__)
    opts = Options(**{k: v for k, v in raw.items() if k in fields})
    base = base.model_copy(update={"run": base.run.model_copy(update={"progress": cfg.run.progress})})
    _say(f"note: --resume continues {folder} with the options it was started with")
    return base, opts


def json_load(path: Path) -> Any:
    import json

    return json.loads(path.read_text(encoding="utf-8"))


def _default_out(base: AppConfig, fp: str) -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return Path("reports") / f"opt-{stamp}-{fp[:6]}"


def _prepare_folder(base: AppConfig, opts: Options, fp: str) -> tuple[Path, bool]:
    from core.outputs.atomic import check_target, is_previous_run

    if opts.resume:
        folder = Path(opts.resume)
        if not folder.is_dir():
            raise ConfigError(f"--resume {opts.resume}: no such folder; pass the folder of an optimizer run")
        return folder, True
    folder = Path(base.run.out) if base.run.out else _default_out(base, fp)
    if (folder / "journal.jsonl").is_file() and not is_previous_run(folder):
        raise ConfigError(f"--out {folder}: holds an unfinished optimizer run; continue it with --resume {folder} "
                          "or choose a new folder")
    check_target(folder, opts.force, "--out")
    if folder.exists() and any(folder.iterdir()):  # a previous run, --force given: start afresh
        import shutil

        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return folder, False


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_optimize(cfg: AppConfig, args: Any = None) -> int:
    """The optimize mode (see the module docstring for exit codes)."""
    from core.backtest.market import build_market

    resume = getattr(args, "resume", None) if args is not None else None
    if resume:
        cfg, opts = resumed_run(Path(resume), cfg, args)
    market = build_market(cfg)
    info = market.info
    if not resume:
        opts = resolve_options(cfg, args, info.first_date, info.last_date)
    space = build_space(cfg, opts.phases, opts.grids or None)
    for note in opts.notes:
        _say(f"note: {note}")
    jopts = journal_options(cfg, opts, space)
    fp = fingerprint(jopts)
    done = read_journal(Path(opts.resume), jopts) if opts.resume else {}
    folder, resumed = _prepare_folder(cfg, opts, fp)
    show = cfg.run.progress
    _say(f"optimize: {space.total} grid points in phases {','.join(map(str, opts.phases))} "
         f"({opts.sampler}{f', {opts.trials} trials/phase' if opts.sampler == 'tpe' else ''}), "
         f"in-sample {opts.is_start}..{opts.is_end}, out-of-sample {opts.oos_start}..{opts.oos_end}, "
         f"{opts.workers} {opts.executor} worker(s) -> {folder}"
         + (f" (resuming: {len(done)} finished evaluations in the journal)" if resumed else ""))
    journal = Journal(folder, jopts, resume=resumed)
    t0 = time.perf_counter()
    out_files.write_json(folder / "run.json", {"status": "running", "started": dt.datetime.now(dt.UTC).isoformat(),
                                               "options": asdict(opts), "fingerprint": fp,
                                               "config": cfg.to_json_dict()})
    executor = make_executor(opts.executor, cfg, opts.min_trades, opts.workers, opts.ray_address)
    ev = Evaluator(executor, journal, done)
    try:
        summary = optimize(cfg, opts, space, ev, folder, show)
    except Interrupted:
        _say(f"interrupted: {len(ev.cache)} finished evaluations are in {folder / 'journal.jsonl'}; "
             f"continue with --resume {folder}")
        return 130
    finally:
        with contextlib.suppress(KeyboardInterrupt):
            executor.close()
        journal.close()
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    summary["peak_memory_mib"] = peak_memory()
    summary["evaluations_run"] = ev.evaluated
    summary["evaluations_reused"] = ev.reused
    run = {"status": "done", "fingerprint": fp, "options": asdict(opts), "executor": executor.name,
           "workers": executor.workers, "python": platform.python_version(), "machine": platform.machine(),
           "data": {"source": info.name, "first": str(info.first_date), "last": str(info.last_date)},
           "config": cfg.to_json_dict(), **summary}
    out_files.write_json(folder / "run.json", run)
    out_files.write_marker(folder)
    bad = summary["verification"]["mismatches"]
    _say(f"optimize: winner fitness {summary['winner']['fitness']} in-sample, "
         f"{summary['winner_oos'].get('fitness')} out-of-sample; PBO {summary['pbo']}; "
         f"DSR {summary['dsr']}; verified {summary['verification']['checked']} sets against the reference "
         f"({len(bad)} mismatches) -> {folder}")
    if bad:
        _say(f"error: the fast evaluation differed from the reference on {len(bad)} set(s): {bad[0]['difference']}")
        return 1
    return 0


def optimize(base: AppConfig, opts: Options, space: Space, ev: Evaluator, folder: Path, show: bool
             ) -> dict[str, Any]:
    """The whole run after the folder is ready: search, walk-forward, OOS, verification, statistics, files."""
    is_scope = scope(opts.is_start, opts.is_end)
    oos_scope = scope(opts.oos_start, opts.oos_end)
    t_search = time.perf_counter()
    outcome = search(ev, space, is_scope, opts.sampler, opts.trials, base.run.seed, show=show)
    search_seconds = time.perf_counter() - t_search
    winner = outcome.winner
    if winner is None:
        raise ConfigError("the search evaluated no parameter set; check --phases and the optimizer grids")
    # the winner out of sample, beside buy and hold
    if show:
        _say(f"out of sample: the winner on {opts.oos_start}..{opts.oos_end}, beside buy-and-hold")
    oos_res = ev.evaluate("oos", oos_scope, [winner["point"]])[0]
    bh_is = ev.evaluate("buyhold", is_scope, [{}])[0]
    bh_oos = ev.evaluate("buyhold", oos_scope, [{}])[0]
    folds = []
    folds_ranges = walk_forward_folds(opts.is_start, opts.is_end, opts.walk_forward, opts.purge_days,
                                      opts.walk_forward_mode) if opts.walk_forward else []
    for k, (train, test) in enumerate(folds_ranges, 1):
        fo = search(ev, space, train, opts.sampler, opts.trials, base.run.seed, show=show, label=f"fold {k}: ")
        fw = fo.winner
        test_res = ev.evaluate("oos", test, [fw["point"]])[0] if fw else None
        folds.append({"fold": k, "train": train, "test": test, "params": fw["point"] if fw else None,
                      "train_fitness": fitness_of(fw) if fw else None,
                      "test_result": _brief(test_res)})
    # verification: a seeded random sample of evaluated sets, fast vs the Backtrader reference
    ranked = outcome.ranked
    valid = sorted((r for r in ranked if "invalid" not in r), key=lambda r: r["key"])
    rng = random.Random(base.run.seed)
    sample = rng.sample(valid, min(opts.verify, len(valid)))
    if winner in valid and winner not in sample and opts.verify:
        sample[-1] = winner
    if show and sample:
        _say(f"verifying {len(sample)} evaluated sets against the Backtrader-driven reference")
    checks = ev.evaluate("verify", is_scope, [r["point"] for r in sample]) if sample else []
    mismatches = [{"key": c["key"], "difference": c["difference"]} for c in checks if c.get("difference")]
    fallback = sorted({r["score"]["why"] for r in valid if r["score"]["path"] != "fast"})
    notes = list(opts.notes)
    if fallback:
        n_ref = sum(1 for r in valid if r["score"]["path"] != "fast")
        notes.append(f"{n_ref} set(s) ran on the reference engine (the fast path cannot reproduce them): "
                     + "; ".join(fallback))
    for p in outcome.phases:
        if p.evaluations > 1 and p.distinct_results == 1:
            notes.append(f"phase {p.phase} ({p.name}): all {p.evaluations} sets gave the same result; its "
                         "parameters do not act with this config (e.g. fuzzy weights without --use-fuzzy)")
    for note in notes[len(opts.notes):]:
        _say(f"note: {note}")
    # overfitting statistics from the daily P&L of every evaluated set
    ids = {r["key"]: f"E{i:05d}" for i, r in enumerate(sorted(outcome.ranked, key=lambda r: r["key"]), 1)}
    pnl = out_files.returns_frame(ranked, ids, "daily_pnl")
    rets = out_files.returns_frame(ranked, ids, "daily_ret")
    over = overfitting(rets, ids.get(winner["key"], ""), base.run.seed)
    # files
    rows = [out_files.result_row(r, i, ids[r["key"]], outcome.phase_of.get(r["key"]))
            for i, r in enumerate(ranked, 1)]
    names = sorted({n for p in opts.phases for n in space.grids[p]})
    cols = ["rank", "eval_id", "phase", *names, *out_files.RESULT_COLUMNS]
    out_files.write_csv(folder / "top100.csv", rows[:opts.top_n], cols)
    out_files.write_csv(folder / "evaluations.csv", rows, cols)
    phases_rows = [asdict(p) for p in outcome.phases]
    out_files.write_csv(folder / "phases.csv", phases_rows, list(phases_rows[0]) if phases_rows else ["phase"])
    best_cfg = apply_point(base, winner["point"]).with_overrides({"backtest.start": opts.is_start.isoformat(),
                                                                  "backtest.end": opts.is_end.isoformat()})
    out_files.write_text(folder / "best.toml", out_files.config_toml(
        best_cfg, f"Winner of the optimizer run in {folder} (in-sample {opts.is_start}..{opts.is_end}).\n"
                  f"fitness {fitness_of(winner):.6g}; rerun: python core/main.py --mode backtest --config "
                  f"{folder / 'best.toml'}"))
    if not pnl.empty:
        out_files.write_parquet(folder / "returns.parquet", pnl)
    oos = {"in_sample": {**is_scope, **_brief(winner)}, "out_of_sample": {**oos_scope, **_brief(oos_res)},
           "buy_and_hold": {"in_sample": _brief(bh_is), "out_of_sample": _brief(bh_oos)},
           "params": winner["point"], "walk_forward": folds, "walk_forward_mode": opts.walk_forward_mode,
           "purge_days": opts.purge_days}
    out_files.write_json(folder / "oos.json", oos)
    out_files.write_json(folder / "overfitting.json", over)
    summary: dict[str, Any] = {
        "winner": {"key": winner["key"], "eval_id": ids[winner["key"]], **_brief(winner)},
        "winner_oos": _brief(oos_res), "pbo": over.get("pbo"), "dsr": over.get("dsr", {}).get("dsr"),
        "evaluated_sets": len(ranked), "phases": phases_rows, "search_seconds": round(search_seconds, 3),
        "evals_per_minute": round(60.0 * len(ranked) / search_seconds, 1) if search_seconds > 0 else None,
        "verification": {"checked": len(checks), "mismatches": mismatches,
                         "fast_seconds": _mean(c.get("fast_seconds") for c in checks),
                         "reference_seconds": _mean(c.get("reference_seconds") for c in checks)},
        "fallback_to_reference": fallback, "notes": notes}
    vs = summary["verification"]
    if vs["fast_seconds"] and vs["reference_seconds"]:
        vs["speedup"] = round(vs["reference_seconds"] / vs["fast_seconds"], 2)
    try:
        out_files.write_report(folder / "report.pdf", {
            "in-sample": f"{opts.is_start}..{opts.is_end}", "out-of-sample": f"{opts.oos_start}..{opts.oos_end}",
            "winner": winner["point"], "in-sample result": _brief(winner), "out-of-sample result": _brief(oos_res),
            "buy-and-hold OOS": _brief(bh_oos), "pbo": over.get("pbo"), "dsr": over.get("dsr", {}).get("dsr"),
            "evaluated sets": len(ranked), "verified": f"{len(checks)} ({len(mismatches)} mismatches)"},
            ranked, outcome.phase_of, {p: space.grids[p] for p in opts.phases}, winner, oos_res,
            over.get("logits", []))
    except ImportError as exc:  # matplotlib missing: every other file is there
        summary["notes"].append(f"report.pdf not written: {exc}")
    return summary


def peak_memory() -> dict[str, float]:
    """Peak resident memory of this process and of the largest finished worker process (MiB)."""
    import resource

    main = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"main": round(main, 1), "largest_worker": round(worker, 1)}


def _mean(values: Any) -> float | None:
    xs = [float(v) for v in values if v is not None]
    return round(sum(xs) / len(xs), 4) if xs else None


def _brief(r: dict[str, Any] | None) -> dict[str, Any]:
    if r is None:
        return {}
    if "invalid" in r:
        return {"invalid": r["invalid"]}
    s = r["score"]
    return {"fitness": None if s["fitness"] <= WORST_FITNESS else s["fitness"], "raw_fitness": s["raw_fitness"],
            "net": s["net"], "max_dd": s["max_dd"], "sharpe": s["sharpe"], "trades": s["trades"],
            "guard": s["guard"], "path": s["path"]}


def overfitting(rets: Any, winner_id: str, seed: int) -> dict[str, Any]:
    """PBO (CSCV) over every evaluated set's daily returns; DSR of the winner."""
    from analytics.overfitting import dsr_of_returns, pbo_cscv

    out: dict[str, Any] = {"implementation": "analytics.overfitting (own; pinned to worked examples in "
                                             "tests/test_overfitting.py)"}
    if rets.empty or rets.shape[1] < 2:
        out["pbo"] = None
        out["why"] = "fewer than two evaluated sets"
        return out
    m = rets.fillna(0.0).to_numpy(float)
    distinct = np.unique(np.round(m, 12), axis=1)
    t = m.shape[0]
    s = 16 if t >= 32 else max(2, (t // 2) // 2 * 2)
    if t < 4:
        out["pbo"] = None
        out["why"] = f"only {t} sessions"
        return out
    res = pbo_cscv(m, n_splits=s, seed=seed)
    sd = m.std(axis=0, ddof=1)
    sharpes = np.where(sd > 0, m.mean(axis=0) / np.where(sd > 0, sd, 1.0), 0.0)
    dsr = dsr_of_returns(rets[winner_id].fillna(0.0).to_numpy(float), sharpes) if winner_id in rets else None
    out.update({"pbo": res.pbo, "n_splits": res.n_splits, "combinations": res.n_combinations,
                "configurations": res.n_strategies, "distinct_return_series": int(distinct.shape[1]),
                "degradation_slope": res.degradation_slope, "prob_oos_loss": res.prob_oos_loss,
                "logits": [round(float(x), 6) for x in res.logits]})
    if dsr is not None and winner_id in rets:
        from analytics.overfitting import deflated_sharpe_ratio

        lenient = deflated_sharpe_ratio(dsr.sr, int(distinct.shape[1]), dsr.sr_variance, dsr.n_obs, dsr.skew,
                                        dsr.kurtosis)
        out["dsr_distinct_trials"] = lenient.dsr
    if dsr is not None:
        out["dsr"] = {"dsr": dsr.dsr, "sharpe_per_day": dsr.sr, "expected_max_sharpe_per_day": dsr.sr0,
                      "sharpe_annual": dsr.sr * np.sqrt(252), "trials": dsr.n_trials,
                      "sharpe_variance": dsr.sr_variance, "days": dsr.n_obs, "skew": dsr.skew,
                      "kurtosis": dsr.kurtosis}
    out["note"] = ("dsr counts every evaluated set as a trial (conservative); sets with identical daily returns "
                   "are not independent, so dsr_distinct_trials counts only distinct return series (lenient)")
    return out

