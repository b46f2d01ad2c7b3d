"""Per-run state: the model, prompts and backends, each built at most once per pytest run."""

from __future__ import annotations

import logging
import time

import torch

from perfsuite.backends.base import Backend, BackendSettings
from perfsuite.backends.registry import BACKENDS
from perfsuite.config import SuiteConfig
from perfsuite.errors import BackendUnavailableError, PerfsuiteError
from perfsuite.models.source import LoadedModel, load_model
from perfsuite.prompts import Prompt, make_prompt

logger = logging.getLogger(__name__)


class PerfSession:
    """Builds the model and backends lazily and caches them, failures included.

    A backend that fails to build stores its error, so each of its benchmarks fails with
    the same cause and the other backends keep running.
    """

    def __init__(self, config: SuiteConfig) -> None:
        self.config = config
        self._model: LoadedModel | None = None
        self._backends: dict[str, Backend | PerfsuiteError] = {}
        self._prompts: dict[int, Prompt] = {}
        self.build_seconds: dict[str, float] = {}

    @property
    def model_loaded(self) -> bool:
        return self._model is not None

    def model(self) -> LoadedModel:
        if self._model is None:
            torch.set_num_threads(self.config.threads)
            started = time.perf_counter()
            self._model = load_model(self.config.model)
            self.build_seconds["model"] = time.perf_counter() - started
            logger.debug("Model ready: %s", self._model.info.describe())
        return self._model

    def prompt(self, n_tokens: int) -> Prompt:
        if n_tokens not in self._prompts:
            self._prompts[n_tokens] = make_prompt(self.model().tokenizer, n_tokens)
        return self._prompts[n_tokens]

    def backend(self, backend_id: str) -> Backend:
        """Return the built backend, raising its stored build error when building failed."""
        if backend_id not in self._backends:
            self._backends[backend_id] = self._build(backend_id)

        built = self._backends[backend_id]
        if isinstance(built, PerfsuiteError):
            raise built
        return built

    def run_record(self) -> dict[str, object]:
        """Return what every saved benchmark records about the model and the run settings."""
        record: dict[str, object] = {"threads": self.config.threads, "profile": self.config.profile.name}
        if self._model is not None:
            record["model"] = self._model.info.to_record()
        return record

    def _build(self, backend_id: str) -> Backend | PerfsuiteError:
        backend_class = BACKENDS[backend_id]
        settings = BackendSettings(threads=self.config.threads, cache_dir=self.config.cache_dir)
        loaded = self.model()

        started = time.perf_counter()
        logger.info("Building backend %s", backend_id)
        try:
            backend_class.check_available()
            backend = backend_class(loaded, settings)
        except BackendUnavailableError as error:
            logger.error("Backend %s is unavailable: %s", backend_id, error)
            return error

        self.build_seconds[backend_id] = time.perf_counter() - started
        logger.info("Built backend %s in %.1f s", backend_id, self.build_seconds[backend_id])
        return backend
