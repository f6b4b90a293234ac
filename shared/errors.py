"""Errors every part may raise and every entry point reports the same way."""


class StartupError(RuntimeError):
    """A service or tool cannot start as configured; the message says what to set or run.
    Entry points print it and exit non-zero, without a traceback."""
