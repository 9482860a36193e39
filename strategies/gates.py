"""Market gates for a new entry — pure functions of one bar's features and the config.

Gates run in a fixed order and the first failure is the decision's reason (code + text):
VIX available and <= vix-max, IV rank >= ivr-min, VRP gate, realized daily vol <= max, ADX
filter, Parabolic SAR filter, opening-gap gate, SPY/QQQ ratio bias, CRASH_MODE regime, MTF
consensus inside the neutral band.  The event gate (``event_gate``: no new entries within N
sessions before an FOMC / CPI day, ``gates.event_blackout_sessions``, off by default) runs
before them in ``strategies.entry``: it reads the session's ``sessions_to_event``.

The opening-gap gate is off where the gap is NaN: on sessions whose open is modelled (stale
vendor opens, ``data_factory.stale_opens``) the pipeline reports no gap.  The CRASH_MODE gate
names the numbers that fired the regime (``strategies.exits.crash_why``).
"""

from __future__ import annotations

import math

from core.config import AppConfig
from core.dto import FeatureRow, ReasonCode
from strategies.exits import crash_why

Gate = tuple[ReasonCode, str]


def volatility_gate(f: FeatureRow, cfg: AppConfig) -> Gate | None:
    vix = f.vix
    if not math.isfinite(vix):
        return ReasonCode.VIX_UNAVAILABLE, "VIX unavailable"
    if vix > cfg.filters.vix_max:
        return ReasonCode.VIX_HIGH, f"VIX {vix:.2f} > vix-max {cfg.filters.vix_max:g}"
    ivr = f.iv_rank
    if cfg.filters.ivr_min > 0 and not (ivr >= cfg.filters.ivr_min):
        return ReasonCode.IV_RANK_LOW, f"IV rank {ivr:.1f} < ivr-min {cfg.filters.ivr_min:g}"
    if cfg.filters.use_vrp_gate and not (f.vrp > cfg.filters.vrp_min):
        return ReasonCode.VRP_LOW, f"VRP {f.vrp:.4f} <= {cfg.filters.vrp_min:g}"
    daily_vol = f.rv_daily / math.sqrt(252.0)
    if math.isfinite(daily_vol) and daily_vol > cfg.filters.max_volatility_pct:
        return (ReasonCode.REALIZED_VOL_HIGH,
                f"realized daily vol {daily_vol:.2%} > max {cfg.filters.max_volatility_pct:.2%}")
    return None


def trend_gate(f: FeatureRow, cfg: AppConfig) -> Gate | None:
    ind = cfg.indicators
    if ind.use_adx_filter and f.adx > ind.adx_threshold_low:
        return ReasonCode.ADX_TREND, f"ADX {f.adx:.1f} > {ind.adx_threshold_low:g}: trending"
    if ind.use_psar_filter and abs(f.psar_p) >= 1.0:
        return ReasonCode.PSAR_TREND, f"close {f.psar_p:+.2f} x 2 ATR from the SAR: trending"
    return None


def structure_gate(f: FeatureRow, cfg: AppConfig) -> Gate | None:
    g = cfg.gates
    gap = f.gap
    if g.use_gap_gate and math.isfinite(gap) and abs(gap) > g.max_gap_pct:
        return ReasonCode.GAP, f"opening gap {gap:+.2%} beyond {g.max_gap_pct:.2%}"
    z = f.ratio_z
    if g.use_ratio_bias and math.isfinite(z) and abs(z) > g.ratio_z_threshold:
        bias = "bearish" if z > 0 else "bullish"
        return ReasonCode.RATIO_BIAS, f"SPY/QQQ ratio z {z:+.2f}: {bias} SPY bias, beyond ±{g.ratio_z_threshold:g}"
    if g.use_regime_gate and f.regime_crash >= 1.0:
        why = crash_why(f)
        return ReasonCode.CRASH_REGIME, f"regime CRASH_MODE ({why}): stand aside" if why else \
            "regime CRASH_MODE: stand aside"
    return None


def mtf_gate(f: FeatureRow, cfg: AppConfig) -> Gate | None:
    if not (cfg.mtf.use_mtf and cfg.mtf.use_filter):
        return None
    c = f.mtf_consensus
    if not math.isfinite(c):
        return ReasonCode.MTF_UNAVAILABLE, f"MTF consensus unavailable: {f.mtf_reason or 'missing timeframe data'}"
    if not cfg.mtf.consensus_min <= c <= cfg.mtf.consensus_max:
        return (ReasonCode.MTF_OUTSIDE_BAND,
                f"MTF consensus {c:.2f} outside [{cfg.mtf.consensus_min:g}, {cfg.mtf.consensus_max:g}]")
    return None


def event_gate(sessions_to_event: int | None, blackout: int | None, label: str = "") -> Gate | None:
    """No new entries within ``blackout`` sessions before a scheduled event (FOMC, CPI): the
    event day itself is 0, the session before 1.  Off when either number is None (or < 0:
    no listed event ahead)."""
    if blackout is None or sessions_to_event is None or sessions_to_event < 0 or sessions_to_event > blackout:
        return None
    what = label or "scheduled event"
    when = "today" if sessions_to_event == 0 else f"in {sessions_to_event} session(s)"
    return ReasonCode.EVENT_BLACKOUT, f"{what} {when}: no new entries within {blackout} session(s) before an event"


def market_gate(f: FeatureRow, cfg: AppConfig) -> Gate | None:
    """The first market gate that blocks an entry, or None."""
    for gate in (volatility_gate, trend_gate, structure_gate, mtf_gate):
        blocked = gate(f, cfg)
        if blocked is not None:
            return blocked
    return None
