"""broker: see README "Architecture"."""
