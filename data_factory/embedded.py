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
  the file) a proxy, flagged ``is_proxy``:

      GARCH(1,1), constant mean, normal errors, fitted by ``arch_model`` on daily S&P
      log returns ×100 from 1999-01-05 to 2013-12-31 only;
      σ²_{t+1} = ω + α ε_t² + β σ²_t        (filtered forward with fixed parameters,
                                              σ² starts at ω/(1-α-β): causal in t)
      avg_t = σ̄² + (σ²_{t+1} - σ̄²)·(1 - φ^H)/((1 - φ)·H),  φ = α+β, H = 21 sessions (30 days)
      proxy_t = k · sqrt(252 · avg_t)        (annualised %, i.e. VIX points)

  ``k`` (variance-risk premium) = mean(real VIX) / mean(sqrt(252·avg_t)) over the dates of
  the 2014-2018 overlap with a real VIX value (about 1.1-1.2, see ``vix_calibration``).

Intraday bars are synthesised per session by the seeded bridge (``data_factory.bridge``),
reproducing each day's OHLCV exactly; option chains are modelled (``data_factory.chains``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from core.dto import ConfigError
from data_factory.bars import slice_dates
from data_factory.base import BAR_COLUMNS, DEFAULTS, ChainSource, SourceInfo
from data_factory.bridge import bridge_intraday
from data_factory.calendar import DateLike
from data_factory.surface import SurfaceParams

PRICE_DIVISOR = {"SPY": 10.0, "QQQ": 40.0}
VOLUME_FACTOR = {"SPY": 0.025, "QQQ": 0.02}
_ARCH_SET = {"SPY": "sp500", "QQQ": "nasdaq"}
GARCH_FIT_END = dt.date(2013, 12, 31)
VIX_HORIZON_SESSIONS = 21
SESSIONS_PER_YEAR = 252


@dataclass(frozen=True, slots=True)
class GarchVixCalibration:
    """Fixed GARCH(1,1) parameters (returns in %) and the variance-risk-premium factor ``k``."""

    mu: float
    omega: float
    alpha: float
    beta: float
    fit_start: dt.date
    fit_end: dt.date
    vrp_factor: float


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


def garch_vix_proxy(returns_pct: np.ndarray, mu: float, omega: float, alpha: float, beta: float) -> np.ndarray:
    """Raw GARCH(1,1) 30-day vol forecast in VIX points at each date, using returns up to that date only.

    ``returns_pct[t]`` is the log return ×100 of session t (NaN where unknown, e.g. t = 0,
    treated as carrying no news: ε² = σ̄²).  Returns ``sqrt(252·avg_t)`` (see module doc).
    """
    persistence = alpha + beta
    long_run = omega / (1.0 - persistence)
    shock2 = np.where(np.isnan(returns_pct), long_run, (returns_pct - mu) ** 2)
    next_var, _ = lfilter([1.0], [1.0, -beta], omega + alpha * shock2, zi=[beta * long_run])
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


@lru_cache(maxsize=1)
def vix_calibration() -> GarchVixCalibration:
    """Fit GARCH(1,1) on S&P log returns (%) up to ``GARCH_FIT_END``; calibrate ``k`` on 2014-2018."""
    from arch import arch_model

    close = _index_daily("sp500")["close"]
    returns = pd.Series(_log_returns_pct(close), index=close.index)
    fit_sample = returns.loc[: pd.Timestamp(GARCH_FIT_END)].dropna()
    fit = arch_model(fit_sample, mean="Constant", vol="GARCH", p=1, q=1, dist="normal", rescale=False)
    params = fit.fit(disp="off").params
    mu, omega, alpha, beta = (float(params[k]) for k in ("mu", "omega", "alpha[1]", "beta[1]"))
    raw_proxy = pd.Series(garch_vix_proxy(returns.to_numpy(), mu, omega, alpha, beta), index=close.index)
    real = _real_vix()
    vrp = float(real.mean() / raw_proxy.loc[real.index].mean())
    return GarchVixCalibration(mu, omega, alpha, beta, fit_sample.index[0].date(), GARCH_FIT_END, vrp)


@lru_cache(maxsize=1)
def _vix_frame() -> pd.DataFrame:
    """VIX on every S&P session: real where available, GARCH proxy × k elsewhere (``is_proxy``)."""
    cal = vix_calibration()
    close = _index_daily("sp500")["close"]
    proxy = cal.vrp_factor * garch_vix_proxy(_log_returns_pct(close), cal.mu, cal.omega, cal.alpha, cal.beta)
    real = _real_vix().reindex(close.index)
    is_proxy = real.isna().to_numpy()
    frame = pd.DataFrame({"vix": np.where(is_proxy, proxy, real.to_numpy()), "is_proxy": is_proxy}, index=close.index)
    return frame


def _slice(frame: pd.DataFrame, start: DateLike | None, end: DateLike | None) -> pd.DataFrame:
    return slice_dates(frame, start, end, "embedded data", "pick dates inside it or use --data-source synthetic")


class EmbeddedMarket:
    """``MarketSource`` over the data ``arch`` ships (see the module doc for factors and proxies)."""

    def __init__(self, seed: int = DEFAULTS.run.seed, underlying: str = DEFAULTS.strategy.underlying,
                 surface: SurfaceParams | None = None) -> None:
        if underlying not in PRICE_DIVISOR:
            raise ConfigError(f"underlying {underlying!r} has no embedded data; choose one of {sorted(PRICE_DIVISOR)}")
        self.seed = int(seed)
        self.underlying = underlying
        self.surface = surface  # rates, dividend yield and smile of the modelled chains
        daily = _proxy_daily(underlying)
        vix = self.vix()
        proxied = vix.index[vix["is_proxy"].to_numpy()]
        leading = proxied[proxied < vix.index[~vix["is_proxy"].to_numpy()][0]]
        cal = vix_calibration()
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
                f"VIX before real data: GARCH(1,1) fitted {cal.fit_start}..{cal.fit_end}, 21-session forecast,"
                f" x {cal.vrp_factor:.4f} (VRP factor calibrated on the 2014-2018 overlap)",
                "option chains priced from a VIX-anchored model surface",
            ),
        )

    def daily_bars(self, start: DateLike | None = None, end: DateLike | None = None) -> pd.DataFrame:
        """Daily OHLCV of the underlying (index ``date``)."""
        return _slice(_proxy_daily(self.underlying), start, end)

    def qqq_daily(self, start: DateLike | None = None, end: DateLike | None = None) -> pd.DataFrame:
        """QQQ-like proxy daily bars: NASDAQ Composite OHLC / 40, volume x 0.02 (a proxy, not QQQ)."""
        return _slice(_proxy_daily("QQQ"), start, end)

    def intraday_bars(self, start: DateLike, end: DateLike, minutes: int = 5) -> pd.DataFrame:
        """Close-labelled ``minutes`` bars (tz New York) from the seeded bridge over ``daily_bars``."""
        return bridge_intraday(self.daily_bars(start, end), self.seed, minutes)

    def vix(self, start: DateLike | None = None, end: DateLike | None = None) -> pd.DataFrame:
        """Daily ``vix`` (points) and ``is_proxy`` (True where the GARCH proxy stands in)."""
        return _slice(_vix_frame(), start, end)

    def chains(self, bars: pd.DataFrame) -> ChainSource:
        """Modelled option chains whose spot is ``bars['close']`` and whose ATM level follows VIX."""
        from data_factory.chains import ModelChainSource

        return ModelChainSource(spot=bars["close"], vix=self.vix(), underlying=self.underlying, params=self.surface)
