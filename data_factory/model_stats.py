"""Checks of the embedded market model against the statistics SPEC §10 names.

``path_statistics`` measures, over every session of a range, how much the synthetic morning
knows about the close — for the bridge and for the reference: a random walk pinned to the same
real open and close with each day's variance set so that the walks' average variance equals the
real open-to-close variance.  ``stress_day_iv`` and ``spread_by_vix`` measure the chain's
implied vol and quotes on the days that matter.  ``scripts/market_model_stats.py`` prints all of
them; README quotes its figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.dto import OptionRight
from data_factory.base import NY_TZ
from data_factory.bridge import bridge_intraday, bridge_vix, conditioned_log_paths
from data_factory.chains import ModelChainSource, find_strike_by_delta
from data_factory.embedded import EmbeddedMarket

PARKINSON = 1.0 / (4.0 * np.log(2.0))


@dataclass(frozen=True, slots=True)
class PathStats:
    corr_10am_close: float  # corr of the 10:00 move (from the previous close) with the close-to-close move
    first30_agree: float  # share of days the first 30 minutes point the way of the open-to-close move
    momentum_bp: float  # mean 10:00 -> 11:00 P&L of trading the direction since the open, basis points
    momentum_t: float
    lag1_autocorr: float  # of 5-minute log returns within sessions

    def row(self) -> list[str]:
        return [f"{self.corr_10am_close:.3f}", f"{100 * self.first30_agree:.1f}%", f"{self.momentum_bp:+.2f}",
                f"{self.momentum_t:+.2f}", f"{self.lag1_autocorr:+.3f}"]


def _stats(prev: np.ndarray, open_: np.ndarray, close: np.ndarray, at_10: np.ndarray, at_11: np.ndarray,
           sigma: np.ndarray, five_minute: np.ndarray) -> PathStats:
    """Statistics of log paths given per day: previous close, open, close, 10:00 and 11:00 values."""
    move_10 = (at_10 - prev) / sigma
    day = (close - prev) / sigma
    corr = float(np.corrcoef(move_10, day)[0, 1])
    first = np.sign(at_10 - open_)
    agree = float(np.mean(first[first != 0] == np.sign(close - open_)[first != 0]))
    pnl = first * (at_11 - at_10) * 1e4
    t = float(pnl.mean() / (pnl.std(ddof=1) / np.sqrt(len(pnl))))
    r = five_minute
    ac = float(np.nansum(r[:, 1:] * r[:, :-1]) / np.nansum(r[:, :-1] ** 2)) if r.size else float("nan")
    return PathStats(corr, agree, float(pnl.mean()), t, ac)


def _five_minute_matrix(values: pd.Series) -> np.ndarray:
    """Within-session 5-minute log returns, one row per day (NaN padded), less their overall mean."""
    logs = np.log(values.to_numpy(np.float64))
    day = pd.DatetimeIndex(values.index).normalize()
    codes, uniques = pd.factorize(day)
    rets = np.r_[np.nan, np.diff(logs)]
    rets[np.r_[True, codes[1:] != codes[:-1]]] = np.nan
    width = int(np.bincount(codes).max())
    out = np.full((len(uniques), width), np.nan)
    pos = np.arange(len(codes)) - np.searchsorted(codes, codes, side="left")
    out[codes, pos] = rets
    return out - np.nanmean(out)


def _at(values: pd.Series, hhmm: str, days: pd.DatetimeIndex) -> np.ndarray:
    """Log value at the bar labelled ``hhmm`` on each of ``days``."""
    local = values[values.index.strftime("%H:%M") == hhmm]
    by_day = pd.Series(local.to_numpy(np.float64), index=pd.DatetimeIndex(local.index).normalize().tz_localize(None))
    return np.log(by_day.reindex(days).to_numpy())


def path_statistics(daily: pd.DataFrame, vix: np.ndarray, seed: int, prior: pd.Series | None = None
                    ) -> dict[str, PathStats | float]:
    """The bridge's spot and VIX paths against pinned random walks (SPEC §10); ``vix`` = daily closes,
    ``prior`` the bridge's variance prior (``EmbeddedMarket.prior_variance()``; default from ``daily``)."""
    daily = daily.copy()
    bars = bridge_intraday(daily, seed, 5, prior)
    counts = bars.groupby(pd.DatetimeIndex(bars.index).normalize().tz_localize(None)).size()
    days = pd.DatetimeIndex(daily.index).normalize()
    keep = counts.reindex(days).to_numpy() == 78  # full sessions only
    full_days = days[keep]
    o, c = np.log(daily["open"].to_numpy()), np.log(daily["close"].to_numpy())
    prev = np.r_[o[0], c[:-1]]
    park = PARKINSON * np.log(daily["high"].to_numpy() / daily["low"].to_numpy()) ** 2
    scale = np.mean((c - o) ** 2) / np.mean(park)
    var_d = scale * park
    sigma = np.sqrt(np.maximum(var_d, 1e-12))
    close = bars["close"]
    at_10, at_11 = _at(close, "10:00", full_days), _at(close, "11:00", full_days)
    k = keep
    out: dict[str, PathStats | float] = {
        "spot_bridge": _stats(prev[k], o[k], c[k], at_10, at_11, sigma[k], _five_minute_matrix(close)[k]),
    }
    # reference: Brownian bridge in log price from o to c with variance var_d over the session (78 steps)
    rng = np.random.default_rng(seed + 1_000_003)
    steps = rng.standard_normal((k.sum(), 78)) * (sigma[k] / np.sqrt(78))[:, None]
    walk = np.cumsum(steps, axis=1)
    frac = np.arange(1, 79)[None, :] / 78
    ref = o[k][:, None] + walk - frac * walk[:, -1:] + frac * (c[k] - o[k])[:, None]
    ref_rets = np.diff(np.concatenate([o[k][:, None], ref], axis=1), axis=1)
    out["spot_reference"] = _stats(prev[k], o[k], c[k], ref[:, 5], ref[:, 17], sigma[k], ref_rets - ref_rets.mean())
    # VIX: the bridge's path vs a pinned walk from its own open to the real close
    path = bridge_vix(daily, vix, seed, 5, prior)
    v_open = _at(path, "09:35", days)
    lv = np.log(vix)
    v_prev = np.r_[lv[0], lv[:-1]]
    v_mat = _five_minute_matrix(path)[k]
    v_sigma = np.sqrt(np.nansum(v_mat**2, axis=1))
    v_at_10, v_at_11 = _at(path, "10:00", full_days), _at(path, "11:00", full_days)
    out["vix_bridge"] = _stats(v_prev[k], v_open[k], lv[k], v_at_10, v_at_11, v_sigma, v_mat)
    v_steps = rng.standard_normal((k.sum(), 77)) * (v_sigma / np.sqrt(77))[:, None]
    v_walk = np.cumsum(v_steps, axis=1)
    v_frac = np.arange(1, 78)[None, :] / 77
    v_ref = v_open[k][:, None] + v_walk - v_frac * v_walk[:, -1:] + v_frac * (lv[k] - v_open[k])[:, None]
    v_ref_rets = np.diff(v_ref, axis=1)
    out["vix_reference"] = _stats(v_prev[k], v_open[k], lv[k], v_ref[:, 4], v_ref[:, 16], v_sigma,
                                  v_ref_rets - v_ref_rets.mean())
    s_mat = _five_minute_matrix(close)[k]
    both = np.isfinite(s_mat) & np.isfinite(v_mat)
    out["corr_5min_spot_vix"] = float(np.corrcoef(s_mat[both], v_mat[both])[0, 1])
    return out


def daily_spot_vix_corr(daily: pd.DataFrame, vix: pd.Series) -> float:
    """Correlation of daily log changes of the close and of the VIX (real VIX days only)."""
    joined = pd.concat([np.log(daily["close"]).diff(), np.log(vix).diff()], axis=1).dropna()
    return float(joined.corr().iloc[0, 1])


def _day_source(market: EmbeddedMarket, day: pd.Timestamp) -> ModelChainSource:
    """The chain source the backtest would use on ``day`` (bars from the session before, for its close)."""
    daily = market.daily_bars()
    pos = daily.index.get_loc(day)
    bars = market.intraday_bars(daily.index[max(pos - 1, 0)], day, 5)
    source = market.chains(bars)
    assert isinstance(source, ModelChainSource)
    return source


def _at_time(day: pd.Timestamp, hhmm: str) -> pd.Timestamp:
    return pd.Timestamp(f"{day.date()} {hhmm}", tz=NY_TZ)


def stress_day_iv(market: EmbeddedMarket, n_days: int = 20, years: tuple[int, int] = (2014, 2018)
                  ) -> dict[str, float]:
    """Median modelled 30-day ATM IV at 15:55 / real VIX close: on the ``n_days`` largest VIX up-days
    and on calm days (|VIX change| < 3%) of ``years`` (real VIX only)."""
    vix = market.vix(f"{years[0]}-01-01", f"{years[1]}-12-31")
    real = vix[~vix["is_proxy"]]["vix"]
    change = np.log(real).diff().dropna()
    stress = change.nlargest(n_days).index
    calm = change[change.abs() < 0.03].index[::25]

    def ratio(day: pd.Timestamp) -> float:
        src = _day_source(market, day)
        return src._state(_at_time(day, "15:55")).atm_30d * 100.0 / float(real.loc[day])

    return {"stress_median": float(np.median([ratio(d) for d in stress])),
            "calm_median": float(np.median([ratio(d) for d in calm])),
            "stress_days": float(len(stress)), "calm_days": float(len(calm))}


def _relative_spread_16d(source: ModelChainSource, ts: pd.Timestamp) -> list[float]:
    """(ask - bid) / mid of the 16-delta put and call of the expiry nearest 30 DTE at ``ts``."""
    expiries = source.expiries(ts)
    day = ts.date()
    expiry = min(expiries, key=lambda e: abs((e - day).days - 30))
    sl = source.expiry_slice(ts, expiry)
    out = []
    for right in (OptionRight.PUT, OptionRight.CALL):
        i = find_strike_by_delta(sl, right, 0.16)
        bid, ask = (sl.put_bid[i], sl.put_ask[i]) if right is OptionRight.PUT else (sl.call_bid[i], sl.call_ask[i])
        out.append(float((ask - bid) / (0.5 * (ask + bid))))
    return out


def spread_by_vix(market: EmbeddedMarket, high: float = 30.0, calm: tuple[float, float] = (11.0, 13.0),
                  max_days: int = 40) -> dict[str, float]:
    """Median relative spread of 16-delta options at 10:00 on VIX >= ``high`` days vs VIX in ``calm``."""
    vix = market.vix()["vix"]
    prev = vix.shift(1)  # the level known at 10:00 is yesterday's close plus the morning; classify by it
    hi_days = vix[(prev >= high)].index
    lo_days = vix[(prev >= calm[0]) & (prev <= calm[1])].index

    def sample(days: pd.DatetimeIndex) -> list[float]:
        step = max(1, len(days) // max_days)
        got: list[float] = []
        for d in days[::step][:max_days]:
            got += _relative_spread_16d(_day_source(market, d), _at_time(d, "10:00"))
        return got

    a, b = sample(hi_days), sample(lo_days)
    return {"high_vix_median": float(np.median(a)), "calm_median": float(np.median(b)),
            "ratio": float(np.median(a) / np.median(b)), "high_days": float(len(hi_days)),
            "calm_days": float(len(lo_days))}


def brownian_check(days: int = 6000, seed: int = 5) -> dict[str, tuple[float, float]]:
    """The bridge's sampler on simulated Brownian days whose σ is known: (truth, bridged) pairs of the
    first-30-minute agreement, lag-1 AC of 5-minute returns and the 10:00~close correlation.  Each
    day is a walk of 390 x 20 steps (1% daily σ); the bridge sees only its open, high, low, close
    and σ, and its minute path is compared with the true one sampled each minute."""
    rng = np.random.default_rng(seed)
    n, sub, chunk = 390, 20, 500
    truth, bridged = np.empty((days, n + 1)), np.empty((days, n + 1))
    for s in range(0, days, chunk):
        k = min(chunk, days - s)
        fine = np.concatenate([np.zeros((k, 1)), np.cumsum(rng.standard_normal((k, n * sub)), axis=1)], axis=1)
        fine *= 0.01 / np.sqrt(n * sub)
        truth[s: s + k] = fine[:, ::sub]
        o, h, lo, c = (np.exp(v) for v in (fine[:, 0], fine.max(axis=1), fine.min(axis=1), fine[:, -1]))
        path = conditioned_log_paths(o, h, lo, c, np.full(k, n), np.full(k, 0.01 / np.sqrt(n)),
                                     rng.standard_normal((k, n)))
        bridged[s: s + k] = path[:, : n + 1]
        bridged[s: s + k, 0], bridged[s: s + k, n] = np.log(o), np.log(c)

    def measure(p: np.ndarray) -> tuple[float, float, float]:
        agree = float(np.mean(np.sign(p[:, 30] - p[:, 0]) == np.sign(p[:, n] - p[:, 0])))
        r = np.diff(p[:, : n + 1 : 5], axis=1)
        r = r - r.mean()
        ac = float((r[:, 1:] * r[:, :-1]).sum() / (r[:, :-1] ** 2).sum())
        return agree, ac, float(np.corrcoef(p[:, 30], p[:, n])[0, 1])

    t, b = measure(truth), measure(bridged)
    return {"first30_agree": (t[0], b[0]), "lag1_autocorr": (t[1], b[1]), "corr_10am_close": (t[2], b[2])}
