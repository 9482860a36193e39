"""modes: see README "Architecture"."""
