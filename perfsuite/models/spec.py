"""Model specs: the text a user passes as ``--perf-model``, parsed into a typed value."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from perfsuite.errors import InvalidOptionError
from perfsuite.models.synthetic import SYNTHETIC_PRESETS

SYNTHETIC_PREFIX = "synthetic:"
DEFAULT_MODEL = "distilgpt2"


class SpecKind(enum.Enum):
    """Where a model comes from."""

    HUB = "hub"
    LOCAL_DIR = "local"
    SYNTHETIC = "synthetic"


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec: a hub id, a local directory or a synthetic preset name."""

    kind: SpecKind
    value: str

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        """Parse ``text`` as ``synthetic:NAME``, a directory path or a hub id.

        A value that names an existing directory, or starts with ``/``, ``.`` or ``~``,
        is a local directory. Anything else is a hub id such as ``distilgpt2``.
        """
        text = text.strip()
        if not text:
            raise InvalidOptionError(
                f"model spec is empty; pass a hub id (for example {DEFAULT_MODEL!r}), "
                f"a directory or '{SYNTHETIC_PREFIX}NAME'"
            )

        if text.startswith(SYNTHETIC_PREFIX):
            return cls._parse_synthetic(text)

        if text.startswith(("/", ".", "~")) or Path(text).is_dir():
            return cls(SpecKind.LOCAL_DIR, str(Path(text).expanduser()))

        return cls(SpecKind.HUB, text)

    @classmethod
    def _parse_synthetic(cls, text: str) -> ModelSpec:
        name = text[len(SYNTHETIC_PREFIX):]
        if name not in SYNTHETIC_PRESETS:
            valid = ", ".join(SYNTHETIC_PREFIX + preset for preset in sorted(SYNTHETIC_PRESETS))
            raise InvalidOptionError(f"unknown synthetic model {text!r}; valid values: {valid}")
        return cls(SpecKind.SYNTHETIC, name)

    def __str__(self) -> str:
        if self.kind is SpecKind.SYNTHETIC:
            return SYNTHETIC_PREFIX + self.value
        return self.value
