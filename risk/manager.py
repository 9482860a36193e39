"""Pre-trade risk checks: Greek caps, risk-budget sizing and the daily drawdown stop (SPEC §6).

Pure and deterministic: every input is passed in, nothing is read or written.

* **Greek caps.** A candidate of ``q`` units with one-unit Greeks ``c`` is checked as
  ``|c.delta * q| <= max_trade_delta`` and ``|c.vega * q| <= max_trade_vega`` (per trade), and
  ``|book + c * q| <= cap`` for portfolio delta, gamma and vega.  A cap blocks exactly the
  trade that would breach it: equality passes, and a trade that leaves an already-breached
  Greek no larger in magnitude than before is not blocked by that cap (it reduces risk).
* **Short-DTE gamma.** When the candidate expires within ``short_dte_days`` calendar days,
  ``|short_dte_book_gamma + c.gamma * q| <= max_short_dte_gamma`` as well, where
  ``short_dte_book_gamma`` is the gamma of open positions with DTE <= ``short_dte_days``.
  Defaults: 7 days (the SPEC's DTE < 7 exit) and 25 (half the portfolio gamma cap), since a
  short option's gamma grows like ``1 / sqrt(tau)`` as expiry nears.
* **Sizing.** ``Q_risk = floor(budget / max_loss_per_contract)`` with
  ``budget = max_account_risk_per_trade * equity``; the size is ``min(Q_fuzzy, Q_risk)``, then
  reduced to the largest quantity that passes every cap (``shrink_to_fit``) or blocked.
* **Daily drawdown.** ``risk.drawdown.check_drawdown`` (the limit is ``max_daily_drawdown``
  here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.config import RiskConfig
from risk.greeks import BookGreeks

_DEFAULTS = RiskConfig()  # the one source of every risk default

_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Risk limits (SPEC §6 defaults).  Delta in shares, vega per vol point, gamma per $1."""

    max_trade_delta: float = _DEFAULTS.max_trade_delta
    max_trade_vega: float = _DEFAULTS.max_trade_vega
    max_portfolio_delta: float = _DEFAULTS.max_portfolio_delta
    max_portfolio_gamma: float = _DEFAULTS.max_portfolio_gamma
    max_portfolio_vega: float = _DEFAULTS.max_portfolio_vega
    max_daily_drawdown: float = _DEFAULTS.max_daily_drawdown
    max_account_risk_per_trade: float = _DEFAULTS.max_account_risk_per_trade
    short_dte_days: int = _DEFAULTS.gamma_dte_days
    max_short_dte_gamma: float = _DEFAULTS.max_near_expiry_gamma
    shrink_to_fit: bool = True
    flatten_on_drawdown: bool = _DEFAULTS.flatten_on_drawdown

    @classmethod
    def from_config(cls, cfg: RiskConfig) -> RiskLimits:
        return cls(max_trade_delta=cfg.max_trade_delta, max_trade_vega=cfg.max_trade_vega,
                   max_portfolio_delta=cfg.max_portfolio_delta, max_portfolio_gamma=cfg.max_portfolio_gamma,
                   max_portfolio_vega=cfg.max_portfolio_vega, max_daily_drawdown=cfg.max_daily_drawdown,
                   max_account_risk_per_trade=cfg.max_account_risk_per_trade, short_dte_days=cfg.gamma_dte_days,
                   max_short_dte_gamma=cfg.max_near_expiry_gamma, flatten_on_drawdown=cfg.flatten_on_drawdown)

    def __post_init__(self) -> None:
        for name in ("max_trade_delta", "max_trade_vega", "max_portfolio_delta", "max_portfolio_gamma",
                     "max_portfolio_vega", "max_short_dte_gamma"):
            if not getattr(self, name) > 0:
                raise ValueError(f"RiskLimits.{name} must be positive, got {getattr(self, name)}")
        for name in ("max_daily_drawdown", "max_account_risk_per_trade"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"RiskLimits.{name} must be in (0, 1), got {getattr(self, name)}")
        if self.short_dte_days < 0:
            raise ValueError(f"RiskLimits.short_dte_days must be >= 0, got {self.short_dte_days}")


@dataclass(frozen=True, slots=True)
class RiskVerdict:
    allowed: bool
    qty: int
    reasons: tuple[str, ...] = ()


def risk_budget_qty(budget: float, max_loss_per_contract: float) -> int:
    """``floor(budget / max_loss_per_contract)`` (a 1e-9 slack absorbs float rounding, 0.3/0.1 -> 3)."""
    if max_loss_per_contract <= 0:
        raise ValueError(f"max_loss_per_contract must be positive, got {max_loss_per_contract}")
    return max(0, math.floor(budget / max_loss_per_contract + _EPS))


def _breaches(before: np.ndarray, after: np.ndarray, cap: float) -> np.ndarray:
    """True where ``|after| > cap`` and the trade does not shrink an existing breach."""
    return (np.abs(after) > cap + _EPS) & (np.abs(after) > np.abs(before) + _EPS)


class RiskManager:
    """Stateless pre-trade checks against ``RiskLimits``."""

    def __init__(self, limits: RiskLimits | None = None) -> None:
        self.limits = limits or RiskLimits()

    def _cap_rows(
        self, unit: BookGreeks, book: BookGreeks, short_dte: bool, short_dte_book_gamma: float
    ) -> list[tuple[str, float, float, float]]:
        """(label, book value, one-unit change, cap) of every cap that applies."""
        lim = self.limits
        rows = [
            ("trade delta", 0.0, unit.delta, lim.max_trade_delta),
            ("trade vega", 0.0, unit.vega, lim.max_trade_vega),
            ("portfolio delta", book.delta, unit.delta, lim.max_portfolio_delta),
            ("portfolio gamma", book.gamma, unit.gamma, lim.max_portfolio_gamma),
            ("portfolio vega", book.vega, unit.vega, lim.max_portfolio_vega),
        ]
        if short_dte:
            rows.append(("short-DTE gamma", short_dte_book_gamma, unit.gamma, lim.max_short_dte_gamma))
        return rows

    def cap_reasons(
        self, unit: BookGreeks, book: BookGreeks, qty: int, dte: int | None = None, short_dte_book_gamma: float = 0.0
    ) -> tuple[str, ...]:
        """Reasons a ``qty``-unit candidate breaches a cap, e.g. 'portfolio vega -520.0 would exceed cap 500'."""
        short = dte is not None and dte <= self.limits.short_dte_days
        out = []
        for label, before, change, cap in self._cap_rows(unit, book, short, short_dte_book_gamma):
            after = before + change * qty
            if _breaches(np.array(before), np.array(after), cap):
                out.append(f"{label} {after:.1f} would exceed cap {cap:g}")
        return tuple(out)

    def max_qty_within_caps(
        self, unit: BookGreeks, book: BookGreeks, qty: int, dte: int | None = None, short_dte_book_gamma: float = 0.0
    ) -> int:
        """Largest ``q <= qty`` whose Greeks pass every cap (0 if none), checked for all q at once."""
        if qty <= 0:
            return 0
        q = np.arange(qty, 0, -1, dtype=float)
        short = dte is not None and dte <= self.limits.short_dte_days
        ok = np.ones(q.size, dtype=bool)
        for _label, before, change, cap in self._cap_rows(unit, book, short, short_dte_book_gamma):
            ok &= ~_breaches(np.full(q.size, before), before + change * q, cap)
        return int(q[np.argmax(ok)]) if ok.any() else 0

    def check_entry(
        self,
        candidate_greeks: BookGreeks,
        book_greeks: BookGreeks,
        qty: int,
        max_loss_per_contract: float,
        equity: float,
        dte: int | None = None,
        short_dte_book_gamma: float = 0.0,
        drawdown_stop: bool = False,
        budget: float | None = None,
    ) -> RiskVerdict:
        """Final size ``min(qty, Q_risk)`` cut to the caps, or a block with its reasons.

        ``candidate_greeks`` are the Greeks of ONE unit (one condor); ``qty`` is the wanted size
        (``Q_fuzzy`` or the static quantity); ``max_loss_per_contract`` in dollars per unit;
        ``budget`` defaults to ``max_account_risk_per_trade * equity``.
        """
        if drawdown_stop:
            return RiskVerdict(False, 0, ("daily drawdown stop is active: no new entries today",))
        budget = self.limits.max_account_risk_per_trade * equity if budget is None else budget
        q_risk = risk_budget_qty(budget, max_loss_per_contract)
        if q_risk < 1:
            return RiskVerdict(False, 0, (
                f"risk budget ${budget:.2f} is below the max loss of one unit ${max_loss_per_contract:.2f}",))
        wanted = min(int(qty), q_risk)
        if wanted < 1:
            return RiskVerdict(False, 0, (f"requested quantity {qty} is below 1",))
        reasons = [f"qty {qty} -> {wanted}: risk budget ${budget:.2f} allows {q_risk}"] if wanted < qty else []
        args = (candidate_greeks, book_greeks)
        fit = self.max_qty_within_caps(*args, wanted, dte, short_dte_book_gamma)
        if fit == wanted:
            return RiskVerdict(True, wanted, tuple(reasons))
        if fit >= 1 and self.limits.shrink_to_fit:
            breach = self.cap_reasons(*args, wanted, dte, short_dte_book_gamma)
            return RiskVerdict(True, fit, (*reasons, *(f"qty {wanted} -> {fit}: {r}" for r in breach)))
        shown = wanted if fit >= 1 else 1
        return RiskVerdict(False, 0, (*reasons, *self.cap_reasons(*args, shown, dte, short_dte_book_gamma)))

    def check_book(self, book: BookGreeks, short_dte_book_gamma: float = 0.0) -> tuple[str, ...]:
        """Portfolio caps the open book already breaches (for monitoring, hedging and reports)."""
        lim = self.limits
        rows = (("portfolio delta", book.delta, lim.max_portfolio_delta),
                ("portfolio gamma", book.gamma, lim.max_portfolio_gamma),
                ("portfolio vega", book.vega, lim.max_portfolio_vega),
                ("short-DTE gamma", short_dte_book_gamma, lim.max_short_dte_gamma))
        return tuple(f"{label} {v:.1f} exceeds cap {cap:g}" for label, v, cap in rows if abs(v) > cap + _EPS)
