"""Domain types shared by every room of the project (a leaf: imports nothing of the project).

``types``: errors, enums, contracts, quotes, expiry slices, legs and positions;
``snapshot``: the typed features, the book and ``MarketSnapshot`` the decision core reads;
``decisions``: ``TradeDecision`` and reason codes the core returns and drivers record.
"""

from core.dto.decisions import *  # noqa: F403
from core.dto.snapshot import *  # noqa: F403
from core.dto.types import *  # noqa: F403
