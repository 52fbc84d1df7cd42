"""The exceptions the package raises. Their messages are the library's, as the command line
prints them (the whole chain of causes)."""


class Error(Exception):
    """Base class of every error the package raises."""


class ConfigError(Error, ValueError):
    """A bad configuration value, option or input (unknown key, value out of range, a file
    that cannot be parsed)."""


class NotFoundError(Error, FileNotFoundError):
    """A missing run directory, checkpoint, data folder or file."""


class DivergedError(Error):
    """Training met a non-finite value and stopped (the last good checkpoint is kept)."""


class BusyError(Error):
    """Another process holds the run directory's lock."""


class WriteError(Error, OSError):
    """A write failed: disk full, file too large, read-only location."""


__all__ = ["Error", "ConfigError", "NotFoundError", "DivergedError", "BusyError", "WriteError"]
