"""One exception type for every user-facing mistake, so the CLI can print one clear line."""


class BenchError(Exception):
    """Bad input or missing data: the message names the key or path and what was expected."""
