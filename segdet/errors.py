"""One exception type per domain. Each message names the file (or key) and the problem."""


class SegdetError(Exception):
    """Base class of every error segdet raises on purpose."""


class ConfigError(SegdetError):
    """A config file or override is wrong: unknown key, bad type, bad value."""


class DataError(SegdetError):
    """A dataset, image or label file cannot be used as it is."""


class CheckpointError(SegdetError):
    """A model file is missing, unreadable or does not fit the model."""


class ExportError(SegdetError):
    """A model could not be exported (a missing package, or an exporter that fixed a dynamic size)."""


class NonFiniteLossError(FloatingPointError):
    """A training loss became NaN or infinite; training stops (a failed run, not bad input)."""
