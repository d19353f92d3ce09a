"""Shared machinery. `core` knows no paper: papers import it, never the other way round."""
