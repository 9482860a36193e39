"""Forecaster data pipeline: causal per-bar features, normalisation, targets, lazy windows, splits.

Features at bar t use bars ``<= t`` only (``FEATURE_NAMES``)::

    ret_1     log(C_t / C_{t-1})
    rsi       (RSI14_t − 50) / 50               Wilder, seeded like TA-Lib
    atr       log(ATR14_t / C_t)                Wilder, seeded like TA-Lib
    volume    log((V_t + 1) / (SMA20(V)_t + 1))
    range     log(H_t / L_t)
    ret_5     log(C_t / C_{t-5})
    rv_20     ½·log(mean_{20}(ret_1²) + 1e-12)

Targets at bar t (NaN where the future is not in the frame)::

    next return   r_{t+1}
    regime        bull if log(C_{t+h}/C_t) > tau, bear if < −tau, neutral otherwise
    variance      mean_{i=1..h} r_{t+i}²   (per bar; vol = sqrt(bars_per_year · variance))
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.signal import lfilter

from core.dto import DataError

FEATURE_NAMES = ("ret_1", "rsi", "atr", "volume", "range", "ret_5", "rv_20")
WILDER_N = 14
VOLUME_N = 20
RV_N = 20
RET_LONG = 5
WARMUP = max(WILDER_N, VOLUME_N - 1, RV_N, RET_LONG)  # first bar index with every feature defined
REGIME_BULL, REGIME_BEAR, REGIME_NEUTRAL = 0, 1, 2


def bar_arrays(bars: pd.DataFrame) -> tuple[np.ndarray, ...]:
    """``open, high, low, close, volume`` as float64 arrays; DataError on missing or bad prices."""
    missing = [c for c in ("open", "high", "low", "close", "volume") if c not in bars.columns]
    if missing:
        raise DataError(f"forecaster bars lack columns {missing}; pass a frame with open, high, low, close, volume")
    arrays = tuple(bars[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close", "volume"))
    if not np.all(np.isfinite(arrays[3])) or np.any(np.concatenate(arrays[:4]) <= 0):
        raise DataError("forecaster bars hold non-positive or missing prices; clean the bar frame first")
    return arrays


def wilder(values: np.ndarray, n: int, first: int) -> np.ndarray:
    """Wilder smoothing: ``s_first = mean(values[first-n+1 .. first])``, ``s_t = s_{t-1} + (x_t − s_{t-1})/n``."""
    out = np.full(values.shape, np.nan)
    if len(values) <= first:
        return out
    seed = values[first - n + 1:first + 1].mean()
    out[first] = seed
    out[first + 1:] = lfilter([1.0 / n], [1.0, -(n - 1.0) / n], values[first + 1:], zi=[seed * (n - 1.0) / n])[0]
    return out


def rsi_wilder(close: np.ndarray, n: int = WILDER_N) -> np.ndarray:
    """RSI = 100·G/(G + L) with G, L the Wilder averages of gains and losses (TA-Lib's seeding)."""
    diff = np.diff(close, prepend=np.nan)
    gain = wilder(np.where(diff > 0, diff, 0.0), n, n)
    loss = wilder(np.where(diff < 0, -diff, 0.0), n, n)
    total = gain + loss
    rsi = np.full(close.shape, np.nan)
    rsi[total == 0] = 50.0
    positive = total > 0
    rsi[positive] = 100.0 * gain[positive] / total[positive]
    return rsi


def atr_wilder(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int = WILDER_N) -> np.ndarray:
    """ATR: Wilder average of ``TR_t = max(H−L, |H−C_{t−1}|, |L−C_{t−1}|)`` from bar 1 (TA-Lib's seeding)."""
    prev = np.concatenate([[np.nan], close[:-1]])
    tr = np.fmax(high - low, np.fmax(np.abs(high - prev), np.abs(low - prev)))
    return wilder(tr, n, n)


def _rolling_mean(x: np.ndarray, n: int) -> np.ndarray:
    out = np.full(x.shape, np.nan)
    if len(x) >= n:
        out[n - 1:] = np.lib.stride_tricks.sliding_window_view(x, n).mean(axis=1)
    return out


def compute_features(bars: pd.DataFrame) -> np.ndarray:
    """Feature matrix ``(N, len(FEATURE_NAMES))``; rows before :data:`WARMUP` hold NaN."""
    _, high, low, close, volume = bar_arrays(bars)
    log_close = np.log(close)
    ret = np.diff(log_close, prepend=np.nan)
    ret_5 = np.full(close.shape, np.nan)
    ret_5[RET_LONG:] = log_close[RET_LONG:] - log_close[:-RET_LONG]
    rv = _rolling_mean(ret * ret, RV_N)
    columns = (
        ret,
        (rsi_wilder(close) - 50.0) / 50.0,
        np.log(atr_wilder(high, low, close) / close),
        np.log((volume + 1.0) / (_rolling_mean(volume, VOLUME_N) + 1.0)),
        np.log(high / low),
        ret_5,
        0.5 * np.log(rv + 1e-12),
    )
    return np.column_stack(columns)


class FeatureStream:
    """The same features bar by bar (live use); ``update`` returns the row or None during warm-up."""

    def __init__(self) -> None:
        self.count = 0
        self.prev_close = float("nan")
        self.closes: deque[float] = deque(maxlen=RET_LONG + 1)
        self.volumes: deque[float] = deque(maxlen=VOLUME_N)
        self.sq_returns: deque[float] = deque(maxlen=RV_N)
        self.sums = {"gain": 0.0, "loss": 0.0, "tr": 0.0}
        self.avg = {"gain": float("nan"), "loss": float("nan"), "tr": float("nan")}

    def _wilder_update(self, key: str, value: float) -> None:
        if self.count <= WILDER_N:
            self.sums[key] += value
            if self.count == WILDER_N:
                self.avg[key] = self.sums[key] / WILDER_N
        else:
            self.avg[key] = self.avg[key] + (value - self.avg[key]) / WILDER_N

    def update(self, high: float, low: float, close: float, volume: float) -> np.ndarray | None:
        """Consume one bar; the feature row of this bar once all features are defined."""
        if not (close > 0 and high > 0 and low > 0):
            raise DataError(f"forecaster stream got a non-positive price at bar {self.count}; fix the live feed")
        self.closes.append(close)
        self.volumes.append(volume)
        if self.count >= 1:
            diff, prev = close - self.prev_close, self.prev_close
            self._wilder_update("gain", max(diff, 0.0))
            self._wilder_update("loss", max(-diff, 0.0))
            self._wilder_update("tr", max(high - low, abs(high - prev), abs(low - prev)))
            self.sq_returns.append(float(np.log(close / prev)) ** 2)
        self.prev_close = close
        self.count += 1
        if self.count <= WARMUP:
            return None
        return self._row(high, low, close, volume)

    def _row(self, high: float, low: float, close: float, volume: float) -> np.ndarray:
        total = self.avg["gain"] + self.avg["loss"]
        rsi = 100.0 * self.avg["gain"] / total if total > 0 else 50.0
        return np.array([
            np.log(close / self.closes[-2]),
            (rsi - 50.0) / 50.0,
            np.log(self.avg["tr"] / close),
            np.log((volume + 1.0) / (np.mean(np.asarray(self.volumes)) + 1.0)),
            np.log(high / low),
            np.log(close / self.closes[0]),
            0.5 * np.log(np.mean(np.asarray(self.sq_returns)) + 1e-12),
        ])


@dataclass(frozen=True, slots=True)
class NormStats:
    """z-score statistics fitted on the training split; ``x' = clip·tanh((x − mean)/(std·clip))``."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    clip: float = 3.0

    @classmethod
    def fit(cls, features: np.ndarray, clip: float = 3.0) -> NormStats:
        rows = features[np.all(np.isfinite(features), axis=1)]
        if len(rows) < 2:
            raise DataError("forecaster training split has fewer than 2 complete feature rows; widen the date range")
        std = rows.std(axis=0)
        return cls(tuple(rows.mean(axis=0).tolist()), tuple(np.where(std > 0, std, 1.0).tolist()), clip)

    def apply(self, features: np.ndarray) -> np.ndarray:
        z = (features - np.asarray(self.mean)) / np.asarray(self.std)
        return self.clip * np.tanh(z / self.clip)


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """How targets are defined and scaled (fitted on the training split)."""

    horizon: int
    regime_threshold: float  # tau: |h-bar log return| tercile on the training split
    ret_scale: float  # std of 1-bar log returns on the training split
    var_scale: float  # mean of the h-bar mean squared return on the training split
    bars_per_year: float = 252.0


def raw_targets(close: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(next return, h-bar log return, h-bar mean squared return)`` at each bar, NaN at the end."""
    log_close = np.log(close)
    ret = np.diff(log_close, prepend=np.nan)
    n = len(close)
    nxt, fwd, var = (np.full(n, np.nan) for _ in range(3))
    nxt[:-1] = ret[1:]
    if n > horizon:
        fwd[:-horizon] = log_close[horizon:] - log_close[:-horizon]
        csum = np.concatenate([[0.0], np.cumsum(np.nan_to_num(ret * ret))])
        var[:-horizon] = (csum[horizon + 1:] - csum[1:-horizon]) / horizon
    return nxt, fwd, var


def regime_labels(fwd: np.ndarray, threshold: float) -> np.ndarray:
    """0 bull (fwd > tau), 1 bear (fwd < −tau), 2 neutral; −1 where fwd is NaN."""
    labels = np.full(fwd.shape, REGIME_NEUTRAL, dtype=np.int64)
    labels[fwd > threshold] = REGIME_BULL
    labels[fwd < -threshold] = REGIME_BEAR
    labels[~np.isfinite(fwd)] = -1
    return labels


def fit_target_spec(close: np.ndarray, train_idx: np.ndarray, horizon: int, bars_per_year: float) -> TargetSpec:
    """Target scales and the regime threshold from the training samples only."""
    nxt, fwd, var = raw_targets(close, horizon)
    return TargetSpec(
        horizon=horizon,
        regime_threshold=float(np.quantile(np.abs(fwd[train_idx]), 1.0 / 3.0)),
        ret_scale=float(np.std(nxt[train_idx])),
        var_scale=float(np.mean(var[train_idx])),
        bars_per_year=bars_per_year,
    )


class WindowSampler:
    """Lazy ``lookback``-bar windows over a normalised feature matrix (no N x L x F copy).

    ``batch(idx)`` returns ``(len(idx), lookback, F)`` built from an ``unfold`` view by indexing the
    windows that end at bars ``idx``, together with the scaled targets at those bars.
    """

    def __init__(self, features: np.ndarray, targets: dict[str, np.ndarray], lookback: int) -> None:
        self.lookback = lookback
        self.x = torch.as_tensor(np.nan_to_num(features), dtype=torch.float32)
        self.views = self.x.unfold(0, lookback, 1)  # (N - L + 1, F, L), a view
        self.targets = {k: torch.as_tensor(v) for k, v in targets.items()}

    def batch(self, idx: np.ndarray) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        ends = torch.as_tensor(idx, dtype=torch.long)
        windows = self.views[ends - self.lookback + 1].transpose(1, 2)
        return windows, {k: v[ends] for k, v in self.targets.items()}


@dataclass(frozen=True, slots=True)
class Split:
    """Sample (window-end) bar indices of one walk-forward fold."""

    train: np.ndarray
    test: np.ndarray


def sample_indices(valid: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Indices ``lo <= t < hi`` where ``valid[t]``."""
    idx = np.arange(max(lo, 0), min(hi, len(valid)))
    return idx[valid[idx]]


def walk_forward_splits(
    dates: pd.DatetimeIndex, valid: np.ndarray, boundaries: list[pd.Timestamp], purge: int
) -> list[Split]:
    """Expanding-window folds: fold k trains on samples before ``boundaries[k]`` minus ``purge`` bars
    and tests on ``[boundaries[k], boundaries[k+1])``. ``purge >= lookback + horizon`` keeps the
    bars a training sample touches (window and target) apart from every test sample's bars.
    """
    cuts = [int(dates.searchsorted(b)) for b in boundaries]
    folds = []
    for k in range(len(cuts) - 1):
        train = sample_indices(valid, 0, cuts[k] - purge)
        test = sample_indices(valid, cuts[k], cuts[k + 1])
        if len(train) and len(test):
            folds.append(Split(train, test))
    if not folds:
        raise DataError("forecaster walk-forward split is empty; widen the date range or shorten the lookback")
    return folds
