"""Out-of-sample evaluation of a forecaster beside naive and econometric baselines on the same bars.

Returns (next bar): MSE of the log return; directional accuracy ``p = mean(sign r̂ = sign r)``
over bars with ``r ≠ 0`` and its standard error ``sqrt(p(1−p)/n)``. Baselines: zero return and
climatology (training-range mean return).

Regimes (h bars): multi-class Brier ``mean Σ_k (p_k − y_k)²``, log loss ``−mean log p_y``,
accuracy of the arg-max. Baselines: uniform 1/3 (the no-information analogue of a zero
return) and climatology (training-range class frequencies).

Volatility (h bars, annualised): ``QLIKE = mean(σ²/σ̂² − log(σ²/σ̂²) − 1)`` and MSE of the
volatility ``σ``. Baselines: GARCH(1,1) with constant mean (arch, fitted on the training
range, forecasts from data up to t), HAR-RV (OLS of the h-bar mean squared return on the
1-, 5- and 22-bar means of r², training range) and climatology.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from arch import arch_model

from core.dto import DataError
from intelligence.forecaster.data import raw_targets, regime_labels
from intelligence.forecaster.infer import ForecastBundle, batch_forecast


def return_metrics(pred: np.ndarray | None, actual: np.ndarray) -> dict[str, float | None]:
    """MSE and directional accuracy (None for a forecast without direction, e.g. zero)."""
    if pred is None:
        return {"mse": float(np.mean(actual**2)), "directional_accuracy": None, "da_stderr": None}
    moving = actual != 0
    hits = np.sign(pred[moving]) == np.sign(actual[moving])
    p = float(hits.mean())
    return {"mse": float(np.mean((pred - actual) ** 2)), "directional_accuracy": p,
            "da_stderr": float(np.sqrt(p * (1.0 - p) / hits.size))}


def regime_metrics(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Brier score, log loss and accuracy of ``probs`` (n, 3) against ``labels`` (n,)."""
    onehot = np.eye(3)[labels]
    p_true = np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1.0)
    return {"brier": float(np.mean(np.sum((probs - onehot) ** 2, axis=1))),
            "log_loss": float(-np.mean(np.log(p_true))),
            "accuracy": float(np.mean(np.argmax(probs, axis=1) == labels))}


def vol_metrics(pred_var: np.ndarray, actual_var: np.ndarray) -> dict[str, float]:
    """QLIKE on variances and MSE on volatilities (both annualised)."""
    ratio = np.maximum(actual_var, 1e-12) / pred_var
    return {"qlike": float(np.mean(ratio - np.log(ratio) - 1.0)),
            "mse_vol": float(np.mean((np.sqrt(pred_var) - np.sqrt(actual_var)) ** 2))}


def garch_variance(ret: np.ndarray, train: slice, horizon: int) -> np.ndarray:
    """Per-bar mean variance over the next ``horizon`` bars, GARCH(1,1) fitted on ``ret[train]``.

    ``ret[0]`` may be NaN (first bar); forecasts are aligned to bars, NaN where unavailable.
    """
    out = np.full(ret.shape, np.nan)
    series = pd.Series(100.0 * ret[1:])  # series position k holds the return of bar k + 1
    first = max(train.start, 1) - 1
    model = arch_model(series, mean="Constant", vol="GARCH", p=1, q=1, dist="normal", rescale=False)
    fitted = model.fit(first_obs=first, last_obs=train.stop - 1, disp="off")
    forecast = fitted.forecast(horizon=horizon, start=first, reindex=False)
    rows = forecast.variance.to_numpy().mean(axis=1) / 1e4
    out[first + 1:first + 1 + len(rows)] = rows
    return out


def har_variance(ret: np.ndarray, target_var: np.ndarray, train: slice) -> np.ndarray:
    """HAR-RV: ``var_h(t) = b0 + b1·r_t² + b5·mean_5(r²) + b22·mean_22(r²)``, OLS on the training bars."""
    sq = pd.Series(ret * ret)
    design = np.column_stack([np.ones(len(ret)), sq, sq.rolling(5).mean(), sq.rolling(22).mean()])
    rows = np.arange(train.start, train.stop)
    rows = rows[np.all(np.isfinite(design[rows]), axis=1) & np.isfinite(target_var[rows])]
    beta, *_ = np.linalg.lstsq(design[rows], target_var[rows], rcond=None)
    return np.maximum(design @ beta, 1e-10)


def _window(index: pd.DatetimeIndex, first: dt.date | str, last: dt.date | str) -> slice:
    return slice(int(index.searchsorted(pd.Timestamp(first))), int(index.searchsorted(pd.Timestamp(last), "right")))


def evaluate_forecaster(
    bundle: ForecastBundle, bars: pd.DataFrame, test_start: dt.date, test_end: dt.date,
) -> dict[str, object]:
    """Metrics of the model and baselines on ``[test_start, test_end]``; baselines fitted on the
    checkpoint's training range (its first bar to the end of its validation split)."""
    spec, h = bundle.spec, bundle.spec.horizon
    fc = batch_forecast(bundle, bars)
    close = bars["close"].to_numpy(dtype=np.float64)
    nxt, fwd, var = raw_targets(close, h)
    ret = np.diff(np.log(close), prepend=np.nan)
    train = _window(bars.index, str(bundle.data_range["first_bar"]), str(bundle.data_range["last_bar"]))
    test = _window(bars.index, test_start, test_end)
    if test.start <= train.stop - 1 or test.stop - test.start < 20:
        raise DataError(f"forecaster test range {test_start}..{test_end} overlaps training or has < 20 bars")
    t_idx = np.arange(test.start, test.stop)
    t_ret = t_idx[np.isfinite(nxt[t_idx]) & np.isfinite(fc.predicted_return[t_idx])]
    t_h = t_idx[np.isfinite(fwd[t_idx]) & np.isfinite(fc.predicted_vol[t_idx])]
    tr_h = np.arange(train.start, train.stop)[np.isfinite(fwd[train])]
    labels = regime_labels(fwd, spec.regime_threshold)
    freq = np.bincount(labels[tr_h], minlength=3) / len(tr_h)
    model_probs = np.column_stack([fc.prob_bull, fc.prob_bear, fc.prob_neutral])[t_h]
    ann = spec.bars_per_year
    vol_sources = {"model": fc.predicted_vol[t_h] ** 2, "garch": ann * garch_variance(ret, train, h)[t_h],
                   "har": ann * har_variance(ret, var, train)[t_h],
                   "climatology": np.full(len(t_h), ann * np.mean(var[tr_h]))}
    return {
        "test_range": [bars.index[t_idx[0]].date().isoformat(), bars.index[t_idx[-1]].date().isoformat()],
        "train_range": [str(bundle.data_range["first_bar"]), str(bundle.data_range["last_bar"])],
        "horizon": h, "n_return": int(len(t_ret)), "n_horizon": int(len(t_h)),
        "return": {"model": return_metrics(fc.predicted_return[t_ret], nxt[t_ret]),
                   "zero": return_metrics(None, nxt[t_ret]),
                   "climatology": return_metrics(np.full(len(t_ret), np.nanmean(ret[train])), nxt[t_ret])},
        "regime": {"model": regime_metrics(model_probs, labels[t_h]),
                   "uniform": regime_metrics(np.full((len(t_h), 3), 1.0 / 3.0), labels[t_h]),
                   "climatology": regime_metrics(np.tile(freq, (len(t_h), 1)), labels[t_h]),
                   "test_frequencies": (np.bincount(labels[t_h], minlength=3) / len(t_h)).tolist()},
        "vol": {name: vol_metrics(v, ann * var[t_h]) for name, v in vol_sources.items()},
    }
