"""Embedded market: real daily S&P 500 / NASDAQ bars and VIX shipped with ``arch``, no network.

Sources (``arch.data``; NYSE sessions 1999-01-04..2018-12-31):

* **SPY-like** daily bars = S&P 500 index OHLC / 10 (SPY trades near a tenth of the index;
  dividends are not re-added, like the index).  Volume = S&P composite share volume
  × 0.025, rounded to whole shares (2018: ~3.5e9 × 0.025 ≈ 88M shares/day, close to
  SPY's average; earlier years are larger than SPY's then-smaller volume).
* **QQQ-like proxy** (``qqq_daily``) = NASDAQ *Composite* OHLC / 40 and volume × 0.02.  QQQ
  tracks the NASDAQ-100 at 1/40 of its level; the Composite is a broader index used as
  a stand-in, so treat it as a proxy (its 2018 level / 40 ≈ 165-200 vs QQQ ≈ 150-185).
* **VIX**: the real index from 2014-01-03 (``arch.data.vix``, trimmed to S&P sessions;
  its rows after 2018-12-31 are dropped).  Before that (and on 2014-01-02, missing from
  the file) a causal proxy, flagged ``is_proxy``, that reads nothing after the day it prices:

      GJR-GARCH(1,1) (Glosten, Jagannathan & Runkle 1993: a down day's shock weighs more, so
      the proxy falls on rallies and jumps on sell-offs like the VIX), constant mean, normal
      errors, on daily S&P log returns ×100, refitted each calendar year Y by ``arch_model``
      on the returns strictly before Y (expanding window from 1999-01-05; years with fewer than
      500 earlier returns — 1999 and 2000 — use the prior μ = 0.03, α = 0.02, γ = 0.10,
      β = 0.91, long-run vol 18%/year, round values of the size daily S&P GJR fits report);
      σ²_{t+1} = ω_Y + (α_Y + γ_Y·1[ε_t < 0]) ε_t² + β_Y σ²_t   (one filter through all days,
                                              the parameters of each day's year; σ² starts at σ̄²)
      avg_t = σ̄² + (σ²_{t+1} - σ̄²)·(1 - φ^H)/((1 - φ)·H),  φ = α + γ/2 + β, H = 21 sessions
      proxy_t = k · sqrt(252 · avg_t)        (annualised %, i.e. VIX points)

  ``k`` = 1.15 is the variance-risk premium in vol terms, fixed in advance rather than fitted
  on this file: implied volatility of the S&P 500 has exceeded the realised volatility that
  followed by roughly 15–25% on average in published studies (Carr & Wu 2009, "Variance Risk
  Premiums", Rev. Financial Studies 22(3); Bollerslev, Tauchen & Zhou 2009, RFS 22(11)); the
  low end is taken because a GARCH forecast already leans high after shocks.  The proxy up to
  any day D is identical whether the data end at D or in 2018 (tested).

Intraday bars are synthesised per session by the seeded bridge (``data_factory.bridge``),
reproducing each day's OHLCV exactly; option chains are modelled (``data_factory.chains``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from core.dto import ConfigError
from data_factory.bars import slice_dates
from data_factory.base import BAR_COLUMNS, DEFAULTS, ChainSource, SourceInfo
from data_factory.bridge import bridge_intraday, bridge_vix, prior_variance
from data_factory.calendar import DateLike
from data_factory.stale_opens import model_stale_opens
from data_factory.surface import SurfaceParams

PRICE_DIVISOR = {"SPY": 10.0, "QQQ": 40.0}
VOLUME_FACTOR = {"SPY": 0.025, "QQQ": 0.02}
_ARCH_SET = {"SPY": "sp500", "QQQ": "nasdaq"}
MIN_FIT_SESSIONS = 500  # fewer earlier returns than this: the prior parameters
# mu, omega (long-run vol 18%/year at persistence 0.98), alpha, beta, gamma (the down-day extra)
GARCH_PRIOR = (0.03, 0.02 * 18.0**2 / 252.0, 0.02, 0.91, 0.10)
VRP_FACTOR = 1.15  # VIX / forecast realised vol, fixed in advance (module doc)
REAL_VIX_FROM = dt.date(2014, 1, 1)
VIX_HORIZON_SESSIONS = 21
SESSIONS_PER_YEAR = 252


@dataclass(frozen=True, slots=True)
class GarchYear:
    """GARCH(1,1) parameters (returns in %) used for one calendar year, and the data they came from."""

    year: int
    mu: float
    omega: float
    alpha: float
    beta: float
    gamma: float  # GJR: extra weight of a down day's shock
    fit_start: dt.date | None  # None: the prior (too little history before the year)
    fit_end: dt.date | None
    sessions: int  # returns the fit used


@lru_cache(maxsize=2)
def _index_daily(name: str) -> pd.DataFrame:
    """Raw index OHLCV from ``arch.data.<name>`` (index ``date``, lower-case columns, float64)."""
    from arch.data import nasdaq, sp500

    raw = sp500.load() if name == "sp500" else nasdaq.load()
    frame = raw[["Open", "High", "Low", "Close", "Volume"]].astype(np.float64)
    frame.columns = list(BAR_COLUMNS)
    frame.index = pd.DatetimeIndex(raw.index).as_unit("ns").normalize().rename("date")
    return frame


@lru_cache(maxsize=2)
def _proxy_daily(underlying: str) -> pd.DataFrame:
    """SPY-like / QQQ-like daily bars: index OHLC / divisor, volume × factor rounded to shares."""
    raw = _index_daily(_ARCH_SET[underlying])
    bars = raw[["open", "high", "low", "close"]] / PRICE_DIVISOR[underlying]
    bars["volume"] = np.rint(raw["volume"] * VOLUME_FACTOR[underlying])
    return bars


@lru_cache(maxsize=4)
def _modelled_daily(underlying: str, seed: int) -> pd.DataFrame:
    """Daily bars with the vendor's stale opens replaced by modelled ones (``open_modelled``)."""
    return model_stale_opens(_proxy_daily(underlying), seed)


def garch_vix_proxy(returns_pct: np.ndarray, mu: ArrayLike, omega: ArrayLike, alpha: ArrayLike,
                    beta: ArrayLike, gamma: ArrayLike = 0.0) -> np.ndarray:
    """Raw GJR-GARCH(1,1) 30-day vol forecast in VIX points at each date, using returns up to that date only.

    ``returns_pct[t]`` is the log return ×100 of session t (NaN where unknown, e.g. t = 0,
    treated as carrying no news: ε² = σ̄²).  Parameters are scalars or one value per session (the
    parameters in force on that session); ``gamma = 0`` is plain GARCH(1,1).  Returns
    ``sqrt(252·avg_t)`` (see module doc).
    """
    r = np.asarray(returns_pct, dtype=np.float64)
    mu_, om, al, be, ga = (np.broadcast_to(np.asarray(x, dtype=np.float64), r.shape)
                           for x in (mu, omega, alpha, beta, gamma))
    persistence = al + 0.5 * ga + be
    long_run = om / (1.0 - persistence)
    eps = r - mu_
    shock = np.where(np.isnan(r), (al + 0.5 * ga) * long_run, (al + ga * (eps < 0)) * eps**2)
    drive = om + shock
    next_var = np.empty_like(r)
    var = float(long_run[0]) if len(r) else 0.0
    for t in range(len(r)):
        var = drive[t] + be[t] * var
        next_var[t] = var
    h = VIX_HORIZON_SESSIONS
    mean_reversion = (1.0 - persistence**h) / ((1.0 - persistence) * h)
    avg_var = long_run + (next_var - long_run) * mean_reversion
    return np.sqrt(SESSIONS_PER_YEAR * avg_var)


def _log_returns_pct(close: pd.Series) -> np.ndarray:
    values = close.to_numpy(dtype=np.float64)
    return np.r_[np.nan, 100.0 * np.diff(np.log(values))]


@lru_cache(maxsize=1)
def _real_vix() -> pd.Series:
    from arch.data import vix as dataset

    raw = dataset.load()["vix"].dropna()
    raw.index = pd.DatetimeIndex(raw.index).as_unit("ns").normalize().rename("date")
    sessions = _index_daily("sp500").index
    return raw[raw.index.isin(sessions)].astype(np.float64)


def garch_years(close: pd.Series, years: list[int]) -> list[GarchYear]:
    """Per calendar year, GARCH(1,1) fitted on the log returns (%) of ``close`` strictly before it."""
    from arch import arch_model

    returns = pd.Series(_log_returns_pct(close), index=pd.DatetimeIndex(close.index)).dropna()
    out: list[GarchYear] = []
    start: np.ndarray | None = None
    for year in years:
        sample = returns[returns.index < pd.Timestamp(year, 1, 1)]
        if len(sample) < MIN_FIT_SESSIONS:
            out.append(GarchYear(year, *GARCH_PRIOR, None, None, len(sample)))  # mu, omega, alpha, beta, gamma
            continue
        model = arch_model(sample, mean="Constant", vol="GARCH", p=1, o=1, q=1, dist="normal", rescale=False)
        params = model.fit(disp="off", starting_values=start).params
        start = params.to_numpy()
        mu, omega, alpha, gamma, beta = (float(params[k]) for k in ("mu", "omega", "alpha[1]", "gamma[1]",
                                                                     "beta[1]"))
        out.append(GarchYear(year, mu, omega, alpha, beta, gamma, sample.index[0].date(), sample.index[-1].date(),
                             len(sample)))
    return out


def causal_vix_proxy(close: pd.Series) -> pd.Series:
    """The VIX proxy (points) on every session of ``close``: each year's GARCH fitted only on earlier
    years, times the fixed ``VRP_FACTOR`` (module doc).  Day D's value reads ``close`` up to D."""
    index = pd.DatetimeIndex(close.index)
    years = sorted(set(index.year.tolist()))
    table = {g.year: g for g in garch_years(close, years)}
    rows = [table[y] for y in index.year.tolist()]
    params = [np.array([getattr(g, k) for g in rows]) for k in ("mu", "omega", "alpha", "beta", "gamma")]
    raw = garch_vix_proxy(_log_returns_pct(close), *params)
    return pd.Series(VRP_FACTOR * raw, index=index, name="vix")


@lru_cache(maxsize=1)
def vix_calibration() -> tuple[GarchYear, ...]:
    """The per-year GARCH parameters behind the embedded proxy (for notes and reports)."""
    close = _index_daily("sp500")["close"]
    proxy_years = sorted(set(close.index[close.index < pd.Timestamp(REAL_VIX_FROM)].year.tolist()) | {2014})
    return tuple(garch_years(close, proxy_years))


@lru_cache(maxsize=4)
def _prior(underlying: str, seed: int) -> pd.Series:
    return prior_variance(_modelled_daily(underlying, seed))


@lru_cache(maxsize=1)
def _vix_frame() -> pd.DataFrame:
    """VIX on every S&P session: real where available, the causal GARCH proxy elsewhere (``is_proxy``)."""
    close = _index_daily("sp500")["close"]
    proxy = causal_vix_proxy(close).to_numpy()
    real = _real_vix().reindex(close.index)
    is_proxy = real.isna().to_numpy()
    frame = pd.DataFrame({"vix": np.where(is_proxy, proxy, real.to_numpy()), "is_proxy": is_proxy}, index=close.index)
    return frame


def _slice(frame: pd.DataFrame, start: DateLike | None, end: DateLike | None) -> pd.DataFrame:
    return slice_dates(frame, start, end, "embedded data", "pick dates inside it or use --data-source synthetic")


EMBEDDED_MODEL: tuple[tuple[str, str], ...] = (
    ("intraday_path", "per session one joint 1-minute path of spot and VIX (data_factory.bridge): spot is a "
                      "random walk from the day's open to its close drawn exactly from its law conditioned on the "
                      "real high and low (variance: half the 20 sessions before, half the day's range); "
                      "VIX = previous close x (spot move)^-8 x a residual bridge ending at the real "
                      "VIX close"),
    ("implied_vol", "SSVI surface whose 30-day ATM level is solved from the intraday VIX path at every bar"),
    ("spreads", "0.01 + 1% of mid x (1 + 0.25|z|)(1 + 1.5 tau) x (VIX/16)^1.5 x (1 + 0.15 x day's move in daily sds)"),
    ("vix_proxy", "before 2014-01-03: GARCH(1,1) refitted each year on earlier years only, x 1.15 fixed in "
                  "advance"),
    ("flag is_proxy", "the day's VIX is the causal proxy, not the real index"),
    ("flag open_modelled", "the vendor's open was unusable (= previous close, or pinned to the high/low); the open "
                           "is a modelled overnight gap and gap features and the gap gate are off that day"),
)


class EmbeddedMarket:
    """``MarketSource`` over the data ``arch`` ships (see the module doc for factors and proxies)."""

    def __init__(self, seed: int = DEFAULTS.run.seed, underlying: str = DEFAULTS.strategy.underlying,
                 surface: SurfaceParams | None = None, strike_steps: tuple[float, float] = (1.0, 5.0)) -> None:
        if underlying not in PRICE_DIVISOR:
            raise ConfigError(f"underlying {underlying!r} has no embedded data; choose one of {sorted(PRICE_DIVISOR)}")
        self.seed = int(seed)
        self.underlying = underlying
        self.surface = surface  # rates, dividend yield and smile of the modelled chains
        self.strike_steps = strike_steps  # listed strike increments near the money / far from it
        daily = _proxy_daily(underlying)
        vix = self.vix()
        proxied = vix.index[vix["is_proxy"].to_numpy()]
        leading = proxied[proxied < vix.index[~vix["is_proxy"].to_numpy()][0]]
        self.info = SourceInfo(
            name="embedded",
            underlying=underlying,
            first_date=daily.index[0].date(),
            last_date=daily.index[-1].date(),
            intraday_synthetic=True,
            vix_proxy_until=leading[-1].date() if len(leading) else None,
            chains_modelled=True,
            notes=(
                f"{underlying}-like daily bars = arch.data.{_ARCH_SET[underlying]} OHLC"
                f" / {PRICE_DIVISOR[underlying]:g}, volume x {VOLUME_FACTOR[underlying]:g}",
                "intraday bars synthesised by a seeded bridge that reproduces each day's OHLCV exactly",
                "VIX before real data: causal proxy, GARCH(1,1) refitted each year on earlier years only,"
                f" 21-session forecast x {VRP_FACTOR:g} (variance-risk premium fixed in advance)",
                "option chains priced from a VIX-anchored model surface",
            ),
            market_model=EMBEDDED_MODEL,
        )

    def daily_bars(self, start: DateLike | None = None, end: DateLike | None = None) -> pd.DataFrame:
        """Daily OHLCV of the underlying (index ``date``), stale vendor opens modelled and flagged
        (``open_modelled``; see ``data_factory.stale_opens``)."""
        return _slice(_modelled_daily(self.underlying, self.seed), start, end)

    def prior_variance(self) -> pd.Series:
        """Variance known before each session (``data_factory.bridge.prior_variance`` over the whole file),
        so that a day's path does not depend on the range requested."""
        return _prior(self.underlying, self.seed)

    def qqq_daily(self, start: DateLike | None = None, end: DateLike | None = None) -> pd.DataFrame:
        """QQQ-like proxy daily bars: NASDAQ Composite OHLC / 40, volume x 0.02 (a proxy, not QQQ)."""
        return _slice(_proxy_daily("QQQ"), start, end)

    def intraday_bars(self, start: DateLike, end: DateLike, minutes: int = 5) -> pd.DataFrame:
        """Close-labelled ``minutes`` bars (tz New York) from the seeded bridge over ``daily_bars``."""
        return bridge_intraday(self.daily_bars(start, end), self.seed, minutes, self.prior_variance())

    def vix(self, start: DateLike | None = None, end: DateLike | None = None) -> pd.DataFrame:
        """Daily ``vix`` (points) and ``is_proxy`` (True where the GARCH proxy stands in)."""
        return _slice(_vix_frame(), start, end)

    def intraday_vix(self, start: DateLike, end: DateLike, minutes: int = 5) -> pd.Series:
        """VIX at each bar close of ``intraday_bars(start, end, minutes)``: the bridge's joint path,
        ending every session at the day's VIX close (real, or the causal proxy)."""
        daily = self.daily_bars(start, end)
        full = _modelled_daily(self.underlying, self.seed)
        pos = int(full.index.get_indexer([daily.index[0]])[0]) if len(daily) else 0
        if pos > 0:  # the first day starts from the session before's VIX close and spot close, never its own
            daily = full.iloc[pos - 1: pos + len(daily)]
        vix = self.vix().reindex(daily.index)["vix"].to_numpy()
        path = bridge_vix(daily, vix, self.seed, minutes, self.prior_variance())
        if pos > 0:
            first = pd.Timestamp(daily.index[1]).tz_localize("America/New_York")
            path = path[path.index >= first]
        return path

    def chains(self, bars: pd.DataFrame) -> ChainSource:
        """Modelled option chains whose spot is ``bars['close']`` and whose ATM level follows the
        intraday VIX path of the same bars (when ``bars`` are this market's bridge bars)."""
        from data_factory.chains import ModelChainSource

        vix_path = None
        if len(bars):
            idx = pd.DatetimeIndex(bars.index)
            local = idx.tz_convert("America/New_York") if idx.tz is not None else idx
            first, last = local[0].date(), local[-1].date()
            minutes = int(round((idx[1] - idx[0]).total_seconds() / 60)) if len(idx) > 1 else 5
            path = self.intraday_vix(first, last, max(minutes, 1)) if minutes <= 390 else None
            if path is not None and path.index.equals(idx):  # the bridge's bars: follow its VIX
                vix_path = path
        return ModelChainSource(spot=bars["close"], vix=self.vix(), underlying=self.underlying, params=self.surface,
                                vix_path=vix_path, strike_steps=self.strike_steps)
