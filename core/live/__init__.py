"""Live paper trading on Alpaca: the backtest's decisions through a crash-safe ledger."""
