"""How a failed Alpaca call is read, and the retry policy for reads (shared by the broker and the live loop).

alpaca-py raises ``alpaca.common.exceptions.APIError`` with ``status_code`` for an HTTP error
(``.code`` / ``.message`` re-parse the body and raise on HTML or a 401) and a raw
``requests`` exception (``ReadTimeout``, ``ConnectionError``) when no answer came.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, unique
from typing import TypeVar

T = TypeVar("T")


@unique
class Failure(Enum):
    """How a failed call is to be read."""

    AMBIGUOUS = "ambiguous"  # timeout, connection drop, 5xx, exhausted 429: it may have happened
    DUPLICATE = "duplicate"  # 422 client_order_id must be unique: it did happen
    REJECTED = "rejected"  # 4xx other than the above: it did not happen
    NOT_FOUND = "not_found"


def status_of(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None)
    return int(code) if isinstance(code, int) else None


def error_text(exc: BaseException) -> str:
    """The broker's message without ever raising (``APIError.code`` raises on non-JSON bodies)."""
    status = status_of(exc)
    if status is None:
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    try:
        msg = str(exc.message)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 -- HTML 5xx body or a 401 without code
        msg = str(exc)[:200]
    return f"HTTP {status}: {msg}"


def is_duplicate_id(exc: BaseException) -> bool:
    if status_of(exc) != 422:
        return False
    text = str(exc)
    return "40010001" in text or "client_order_id" in text


def classify(exc: BaseException) -> Failure:
    status = status_of(exc)
    if status is None:
        return Failure.AMBIGUOUS  # requests Timeout / ConnectionError / anything without an answer
    if status == 404:
        return Failure.NOT_FOUND
    if is_duplicate_id(exc):
        return Failure.DUPLICATE
    if status == 429 or status == 408 or status >= 500:
        return Failure.AMBIGUOUS
    return Failure.REJECTED


def retry_after(exc: BaseException) -> float | None:
    resp = getattr(exc, "response", None)
    value = resp.headers.get("Retry-After") if resp is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


@dataclass
class RetryPolicy:
    """Backoff for reads: ``base * 2**k`` with jitter, capped; ``Retry-After`` wins when given."""

    attempts: int = 4
    base: float = 0.5
    cap: float = 8.0
    max_retry_after: float = 30.0
    sleep: Callable[[float], None] = time.sleep

    def delay(self, k: int, exc: BaseException) -> float:
        ra = retry_after(exc)
        if ra is not None:
            return min(ra, self.max_retry_after)
        return min(self.cap, self.base * 2 ** k) * (0.5 + random.random() / 2)


class BrokerUnavailable(Exception):
    """A read failed after every retry (counted by the kill switch)."""


def call_read(fn: Callable[[], T], policy: RetryPolicy, what: str,
              on_error: Callable[[BaseException], None] | None = None) -> T:
    """Run an idempotent read, retrying ambiguous failures; other failures raise at once."""
    last: BaseException | None = None
    for k in range(policy.attempts):
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 -- classified below
            if on_error is not None:
                on_error(exc)
            if classify(exc) is not Failure.AMBIGUOUS:
                raise
            last = exc
            if k + 1 < policy.attempts:
                policy.sleep(policy.delay(k, exc))
    raise BrokerUnavailable(f"{what}: {error_text(last) if last else 'failed'} after {policy.attempts} attempts")
