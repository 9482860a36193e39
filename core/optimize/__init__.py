"""Optimizer: the six-phase search of SPEC §7 over a fast evaluation proven equal to the engine.

``space`` (SPEC grids, points -> configs) · ``fast`` (the evaluation: the driver on the bars
where something can happen; scoring) · ``executor`` (serial | process | Ray, one worker code
path) · ``search`` (phases, grid and TPE samplers, the journalled evaluator) · ``journal``
(journal.jsonl, --resume) · ``outputs`` (the run folder's files) · ``cli`` (``run_optimize``,
the entry point of ``--mode optimize``).  Overfitting statistics: ``analytics.overfitting``.
"""
