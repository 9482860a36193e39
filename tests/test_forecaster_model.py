"""Forecaster data pipeline, training, checkpoints, inference and the shipped model card numbers."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib
import torch

from core.dto import ConfigError, DataError
from core.modes.train import evaluate_checkpoint, load_bundle, load_sp500_daily_bars, train_forecaster
from intelligence.forecaster.data import (
    WARMUP,
    FeatureStream,
    WindowSampler,
    atr_wilder,
    compute_features,
    rsi_wilder,
    walk_forward_splits,
)
from intelligence.forecaster.infer import StreamingForecaster, batch_forecast, bundle_from_checkpoint
from intelligence.forecaster.train import TrainParams, build_dataset, fit_forecaster

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(start=dt.date(2009, 1, 1), end=dt.date(2011, 12, 31), lookback=20, d_model=8, layers=1, d_state=4,
            head_dim=8, horizon=5, epochs=2, batch=64, tensorboard_dir="")


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return load_sp500_daily_bars()


@pytest.fixture(scope="module")
def tiny(bars: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("fc") / "tiny.pth"
    train_forecaster(TrainParams(**TINY, out=str(out)), bars=bars, progress=False)
    return out, torch.load(out, map_location="cpu", weights_only=True)


def test_features_match_talib(bars: pd.DataFrame) -> None:
    high, low, close = (bars[c].to_numpy() for c in ("high", "low", "close"))
    np.testing.assert_allclose(rsi_wilder(close), talib.RSI(close, 14), rtol=0, atol=1e-9, equal_nan=True)
    np.testing.assert_allclose(atr_wilder(high, low, close), talib.ATR(high, low, close, 14), atol=1e-9,
                               equal_nan=True)
    feats = compute_features(bars)
    assert np.isnan(feats[WARMUP - 1]).any()
    assert np.isfinite(feats[WARMUP:]).all()
    np.testing.assert_allclose(feats[:, 1], (talib.RSI(close, 14) - 50) / 50, atol=1e-12, equal_nan=True)


def test_features_are_causal_and_streamable(bars: pd.DataFrame) -> None:
    window = bars.iloc[:400]
    full = compute_features(window)
    for t in (WARMUP + 1, 137, 399):
        np.testing.assert_array_equal(compute_features(window.iloc[:t]), full[:t])
    stream = FeatureStream()
    rows = [stream.update(*r) for r in window[["high", "low", "close", "volume"]].to_numpy()]
    assert all(r is None for r in rows[:WARMUP])
    np.testing.assert_allclose(np.array(rows[WARMUP:]), full[WARMUP:], rtol=1e-12, atol=1e-12)


def test_windows_are_lazy_views(bars: pd.DataFrame) -> None:
    feats = np.nan_to_num(compute_features(bars.iloc[:300]))
    sampler = WindowSampler(feats, {"y": np.arange(300.0)}, lookback=30)
    assert sampler.views.untyped_storage().data_ptr() == sampler.x.untyped_storage().data_ptr()
    x, y = sampler.batch(np.array([29, 150, 299]))
    np.testing.assert_array_equal(x[1].numpy(), feats[121:151].astype(np.float32))
    assert y["y"].tolist() == [29.0, 150.0, 299.0]


def test_splits_purge_and_train_only_statistics(bars: pd.DataFrame) -> None:
    params = TrainParams(**TINY)
    data = build_dataset(bars, params)
    assert data.val_idx[0] - data.train_idx[-1] > params.lookback + params.horizon
    shocked = bars.copy()
    later = shocked.index >= data.dates[data.val_idx[0]]
    shocked.loc[later, ["open", "high", "low", "close"]] *= 3.0
    shocked.loc[later, "volume"] *= 10.0
    other = build_dataset(shocked, params)
    assert other.norm == data.norm
    assert other.spec == data.spec
    valid = np.ones(len(bars), dtype=bool)
    folds = walk_forward_splits(bars.index, valid, [pd.Timestamp(f"{y}-01-01") for y in (2005, 2008, 2011)], 70)
    assert len(folds) == 2
    for fold in folds:
        assert fold.test[0] - fold.train[-1] > 70
        assert fold.train[0] == 0


def test_same_seed_trains_bit_identically_and_resume_matches(bars: pd.DataFrame, tiny, tmp_path: Path) -> None:
    _, first = tiny
    _, again = fit_forecaster(bars, TrainParams(**TINY))
    for key, value in first["best_state"].items():
        assert torch.equal(value, again["best_state"][key]), key
    assert [(h["train_loss"], h["val_loss"]) for h in first["history"]] == [
        (h["train_loss"], h["val_loss"]) for h in again["history"]
    ]
    one = TrainParams(**{**TINY, "epochs": 1}, out=str(tmp_path / "r.pth"))
    train_forecaster(one, bars=bars, progress=False)
    resumed = train_forecaster(dataclasses.replace(one, epochs=2, resume=True), bars=bars, progress=False)
    assert resumed.epochs_run == 2
    state = torch.load(tmp_path / "r.pth", map_location="cpu", weights_only=True)
    for key, value in first["model_state"].items():
        assert torch.equal(value, state["model_state"][key]), key


def test_checkpoint_round_trip_and_causal_forecasts(bars: pd.DataFrame, tiny) -> None:
    path, checkpoint = tiny
    bundle = load_bundle(path)
    assert checkpoint["data"]["last_bar"] <= "2011-12-31"
    assert checkpoint["norm"]["mean"]
    window = bars.loc["2010-06-01":"2013-06-30"]
    full = batch_forecast(bundle, window)
    again = batch_forecast(bundle_from_checkpoint(checkpoint), window)
    np.testing.assert_array_equal(full.to_frame().to_numpy(), again.to_frame().to_numpy())
    frame = full.to_frame().to_numpy()
    assert np.isnan(frame[:bundle.first_forecast_bar]).all()
    assert np.isfinite(frame[bundle.first_forecast_bar:]).all()
    np.testing.assert_allclose(frame[:, :3].sum(axis=1)[bundle.first_forecast_bar:], 1.0, atol=1e-9)
    for t in (bundle.first_forecast_bar + 1, 333, 700):
        cut = batch_forecast(bundle, window.iloc[:t]).to_frame().to_numpy()
        np.testing.assert_allclose(cut, frame[:t], rtol=1e-5, atol=1e-6)


def test_streaming_equals_batch(bars: pd.DataFrame, tiny) -> None:
    bundle = load_bundle(tiny[0])
    window = bars.loc["2012-01-01":"2012-12-31"]
    batch = batch_forecast(bundle, window)
    stream = StreamingForecaster(bundle)
    for i, (h, lo, c, v) in enumerate(window[["high", "low", "close", "volume"]].to_numpy()):
        step = stream.update(h, lo, c, v)
        if i < bundle.first_forecast_bar:
            assert step is None
            continue
        assert step.state.prob_bull == pytest.approx(batch.prob_bull[i], abs=1e-5)
        assert step.state.confidence == pytest.approx(batch.confidence[i], abs=1e-5)
        assert step.predicted_return == pytest.approx(batch.predicted_return[i], rel=1e-4, abs=1e-8)
        assert step.predicted_vol == pytest.approx(batch.predicted_vol[i], rel=1e-4)
    assert batch.state_at(len(window) - 1).prob_bull == pytest.approx(step.state.prob_bull, abs=1e-5)


def test_shipped_checkpoint_reproduces_model_card(bars: pd.DataFrame) -> None:
    path = ROOT / "models" / "mamba_active.pth"
    assert path.stat().st_size < 2_000_000
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    assert checkpoint["data"]["last_bar"] <= "2016-12-31"
    expected = json.loads((ROOT / "models" / "mamba_active.metrics.json").read_text())
    got = json.loads(json.dumps(evaluate_checkpoint(path, bars=bars)))

    def compare(a: object, b: object) -> None:
        if isinstance(a, dict):
            assert a.keys() == b.keys()
            for k in a:
                compare(a[k], b[k])
        elif isinstance(a, float):
            assert b == pytest.approx(a, rel=1e-5, abs=1e-9)
        else:
            assert a == b

    compare(expected, got)


def test_bad_parameters_and_ranges_are_reported(bars: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="device"):
        TrainParams(device="tpu")
    with pytest.raises(ConfigError, match="head_dim"):
        TrainParams(d_model=10, head_dim=16)
    with pytest.raises(DataError, match="bars"):
        build_dataset(bars, TrainParams(start=dt.date(2010, 1, 1), end=dt.date(2010, 3, 1)))
