"""Optimizer: the six-phase search of SPEC §7 over a fast evaluation proven equal to the engine."""
