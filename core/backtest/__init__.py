"""backtest: see README "Architecture"."""
