"""outputs: see README "Architecture"."""
