"""Exceptions raised for invalid input and failed setup steps."""


class PerfsuiteError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidOptionError(PerfsuiteError, ValueError):
    """An option value (model spec, backend id, thread count) is invalid."""


class ModelNotFoundError(PerfsuiteError, FileNotFoundError):
    """A model directory, or a file the loader needs inside it, is missing."""


class UnsupportedModelError(PerfsuiteError, ValueError):
    """The model loads but is not an architecture the backends can run."""


class PromptTooLongError(PerfsuiteError, ValueError):
    """A prompt plus its new tokens needs more positions than the model has."""


class BackendUnavailableError(PerfsuiteError, RuntimeError):
    """A backend could not be built: missing runtime, failed export or quantization."""
