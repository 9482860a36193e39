"""Structure specs: legs as data, one generic payoff / max loss / breakeven / buying-power computation."""
