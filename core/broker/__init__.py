"""Brokers: the ``Broker`` protocol and the simulated venue (Alpaca implements the same protocol)."""
