"""stress: see README "Architecture"."""
