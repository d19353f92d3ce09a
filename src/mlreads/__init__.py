"""mlreads: the ideas of modern ML as running code, with parity tests and re-measured claims."""

__version__ = "0.1.0"
