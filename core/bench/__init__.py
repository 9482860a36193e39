"""bench: see README "Architecture"."""
