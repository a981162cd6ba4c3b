"""One exception type for every user-facing mistake, so the CLI can print one clear line."""


class BenchError(Exception):
    """Bad input or missing data: the message names the key or path and what was expected (exit status 2)."""

    exit_code = 2


class WriteFailed(BenchError):
    """A file could not be written (disk full, read-only folder): not the input's fault (exit status 1)."""

    exit_code = 1
