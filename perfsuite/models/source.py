"""Turn a model spec into a loaded GPT-2, its tokenizer and a description of where it came from."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from transformers import AutoConfig, AutoTokenizer, GPT2LMHeadModel, PreTrainedTokenizerBase

from perfsuite.errors import ModelNotFoundError, UnsupportedModelError
from perfsuite.models.fingerprint import fingerprint_model
from perfsuite.models.spec import ModelSpec, SpecKind
from perfsuite.models.synthetic import SYNTHETIC_PRESETS, build_synthetic_model
from perfsuite.models.tokenizer import load_gpt2_tokenizer

logger = logging.getLogger(__name__)

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "vocab.json")


@dataclass(frozen=True)
class ModelInfo:
    """Description of the loaded model, recorded in every saved benchmark and the run header."""

    requested: str
    kind: SpecKind
    name: str
    fingerprint: str
    num_parameters: int
    n_positions: int
    fallback_reason: str | None = None

    @property
    def synthetic(self) -> bool:
        return self.kind is SpecKind.SYNTHETIC

    def describe(self) -> str:
        """Return one line for the terminal header, saying plainly when weights are synthetic."""
        text = f"{self.kind.value}:{self.name} ({self.num_parameters / 1e6:.1f}M parameters, fingerprint {self.fingerprint})"
        if self.synthetic:
            text += "; SYNTHETIC weights: latency stands for the real model, generated text is meaningless"
        if self.fallback_reason:
            text += f"; fell back because {self.fallback_reason}"
        return text

    def to_record(self) -> dict[str, object]:
        return {
            "requested": self.requested,
            "source": self.kind.value,
            "name": self.name,
            "fingerprint": self.fingerprint,
            "num_parameters": self.num_parameters,
            "synthetic": self.synthetic,
            "fallback_reason": self.fallback_reason,
        }


@dataclass(frozen=True)
class LoadedModel:
    """A GPT-2 in eval mode with its tokenizer; backends read it and never modify it."""

    model: GPT2LMHeadModel
    tokenizer: PreTrainedTokenizerBase
    info: ModelInfo


def load_model(spec: ModelSpec) -> LoadedModel:
    """Load the model that ``spec`` names.

    A hub id is read from the local hub cache first. When it is neither cached nor
    downloadable and a synthetic preset of the same name exists, that preset is used
    instead, and the fallback is recorded in ``ModelInfo.fallback_reason``.
    """
    if spec.kind is SpecKind.SYNTHETIC:
        return _load_synthetic(str(spec), spec.value, fallback_reason=None)

    if spec.kind is SpecKind.LOCAL_DIR:
        return _load_directory(spec)

    return _load_hub(spec)


def _load_synthetic(requested: str, preset_name: str, fallback_reason: str | None) -> LoadedModel:
    model = build_synthetic_model(SYNTHETIC_PRESETS[preset_name])
    info = _describe(model, requested, SpecKind.SYNTHETIC, preset_name, fallback_reason)
    return LoadedModel(model=model, tokenizer=load_gpt2_tokenizer(), info=info)


def _load_directory(spec: ModelSpec) -> LoadedModel:
    directory = Path(spec.value)
    check_model_directory(directory)

    model = _from_pretrained(str(directory), local_files_only=True)
    tokenizer = _directory_tokenizer(directory)
    info = _describe(model, str(spec), SpecKind.LOCAL_DIR, str(directory), fallback_reason=None)
    return LoadedModel(model=model, tokenizer=tokenizer, info=info)


def check_model_directory(directory: Path) -> None:
    """Raise ModelNotFoundError naming the path and the missing files, if any are missing."""
    if not directory.is_dir():
        raise ModelNotFoundError(
            f"model directory not found: {directory}; pass a directory written by "
            f"save_pretrained(), a hub id, or synthetic:distilgpt2"
        )

    missing = []
    if not (directory / "config.json").is_file():
        missing.append("config.json")
    if not any((directory / name).is_file() for name in WEIGHT_FILES):
        missing.append("weights (one of " + ", ".join(WEIGHT_FILES) + ")")
    if missing:
        raise ModelNotFoundError(
            f"model directory {directory} is missing {' and '.join(missing)}; "
            f"write it with model.save_pretrained({str(directory)!r})"
        )


def _directory_tokenizer(directory: Path) -> PreTrainedTokenizerBase:
    if any((directory / name).is_file() for name in TOKENIZER_FILES):
        return AutoTokenizer.from_pretrained(str(directory), local_files_only=True)

    logger.warning("No tokenizer files in %s; using the packaged GPT-2 tokenizer", directory)
    return load_gpt2_tokenizer()


def _load_hub(spec: ModelSpec) -> LoadedModel:
    try:
        logger.info("Looking for %r in the local hub cache", spec.value)
        return _load_hub_files(spec, local_files_only=True)
    except OSError as cache_error:
        cache_miss = cache_error

    if _hub_offline():
        reason = f"{spec.value!r} is not in the local hub cache and HF_HUB_OFFLINE is set"
        return _fall_back_or_raise(spec, reason, cache_miss)

    try:
        logger.info("Downloading %r from the hub (set HF_HUB_OFFLINE=1 to skip this attempt)", spec.value)
        return _load_hub_files(spec, local_files_only=False)
    except OSError as download_error:
        reason = f"{spec.value!r} is neither cached nor downloadable ({_first_line(download_error)})"
        return _fall_back_or_raise(spec, reason, download_error)


def _load_hub_files(spec: ModelSpec, local_files_only: bool) -> LoadedModel:
    model = _from_pretrained(spec.value, local_files_only=local_files_only)
    tokenizer = AutoTokenizer.from_pretrained(spec.value, local_files_only=local_files_only)
    info = _describe(model, spec.value, SpecKind.HUB, spec.value, fallback_reason=None)
    return LoadedModel(model=model, tokenizer=tokenizer, info=info)


def _fall_back_or_raise(spec: ModelSpec, reason: str, error: OSError) -> LoadedModel:
    if spec.value not in SYNTHETIC_PRESETS:
        raise ModelNotFoundError(
            f"could not load model {spec.value!r}: {reason}. Download it once on a machine with "
            f"network access, pass a local directory, or use synthetic:distilgpt2"
        ) from error

    logger.warning("Falling back to synthetic:%s because %s", spec.value, reason)
    return _load_synthetic(spec.value, spec.value, fallback_reason=reason)


def _from_pretrained(name_or_path: str, local_files_only: bool) -> GPT2LMHeadModel:
    config = AutoConfig.from_pretrained(name_or_path, local_files_only=local_files_only)
    if config.model_type != "gpt2":
        raise UnsupportedModelError(
            f"{name_or_path} is a {config.model_type!r} model; the backends support GPT-2 "
            f"architecture models (gpt2, distilgpt2 and their fine-tunes)"
        )

    model = GPT2LMHeadModel.from_pretrained(name_or_path, config=config, local_files_only=local_files_only)
    return model.eval()


def _describe(
    model: GPT2LMHeadModel, requested: str, kind: SpecKind, name: str, fallback_reason: str | None
) -> ModelInfo:
    return ModelInfo(
        requested=requested,
        kind=kind,
        name=name,
        fingerprint=fingerprint_model(model),
        num_parameters=model.num_parameters(),
        n_positions=model.config.n_positions,
        fallback_reason=fallback_reason,
    )


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
