"""The model manifest: what the shipped ONNX file must be, checked before it is trusted.

``manifest.json`` sits beside the model and names its file, sha256, input and output tensors
(name, shape with symbolic dimensions as strings, dtype), the output stride, the resolution the
model works at, the detection threshold and ``flips``, how many mirror images of the input the
model is run on and averaged over (1, 2 or 4; the threshold was chosen with that count), and
how detections are thinned: ``suppression`` (``distance`` or ``cell-maxima``, see
:data:`appliance.minutiae.decode.SUPPRESSIONS`), ``min_distance_px`` and
``aligned_distance_px``, the reach of the merge of detections pointing the same way
(:data:`appliance.minutiae.decode.ALIGNED_DEG`); ``min_minutiae`` and ``floor_threshold``, the
count a print is topped up to with detections under the threshold but at or above the floor
(:func:`appliance.minutiae.decode.kept_count`). A manifest without them (model 1.1.0 and
earlier) means what those models were chosen with: cell maxima, 6 px, no aligned merge, no
top-up. A
station refuses to load a model that does not match: a corrupted or swapped file would
otherwise produce plausible but wrong templates.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.minutiae.decode import (
    FLOOR_THRESHOLD,
    LEGACY_SUPPRESSION,
    MIN_DISTANCE_PX,
    SUPPRESSIONS,
)
from appliance.minutiae.errors import ModelIntegrityError

MANIFEST_NAME = "manifest.json"
#: onnxruntime's tensor type names and the numpy names the manifest uses.
ORT_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(uint8)": "uint8"}


@dataclass(frozen=True)
class TensorSpec:
    """One input or output tensor as the manifest states it."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str


@dataclass(frozen=True)
class ModelManifest:
    """The manifest of one model folder."""

    folder: Path
    file: str
    sha256: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    stride: int
    ppi: int
    threshold: float
    version: str
    flips: int = 1
    suppression: str = LEGACY_SUPPRESSION
    min_distance_px: float = MIN_DISTANCE_PX
    aligned_distance_px: float = 0.0
    min_minutiae: int = 0
    floor_threshold: float = FLOOR_THRESHOLD

    @property
    def model_path(self) -> Path:
        """The ONNX file the manifest describes."""
        return self.folder / self.file


def _specs(raw: Any) -> tuple[TensorSpec, ...]:
    return tuple(
        TensorSpec(name=str(t["name"]), shape=tuple(t["shape"]), dtype=str(t["dtype"]))
        for t in raw
    )


def load_manifest(folder: Path) -> ModelManifest:
    """Read ``folder/manifest.json``; raises :class:`ModelIntegrityError` when it is unusable."""
    path = Path(folder) / MANIFEST_NAME
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        manifest = ModelManifest(
            folder=Path(folder),
            file=str(raw["file"]),
            sha256=str(raw["sha256"]).lower(),
            inputs=_specs(raw["inputs"]),
            outputs=_specs(raw["outputs"]),
            stride=int(raw["stride"]),
            ppi=int(raw["resolution_ppi"]),
            threshold=float(raw["threshold"]),
            version=str(raw["version"]),
            flips=int(raw.get("flips", 1)),
            suppression=str(raw.get("suppression", LEGACY_SUPPRESSION)),
            min_distance_px=float(raw.get("min_distance_px", MIN_DISTANCE_PX)),
            aligned_distance_px=float(raw.get("aligned_distance_px", 0.0)),
            min_minutiae=int(raw.get("min_minutiae", 0)),
            floor_threshold=float(raw.get("floor_threshold", FLOOR_THRESHOLD)),
        )
        if manifest.flips not in (1, 2, 4):
            raise ValueError(f"flips must be 1, 2 or 4, not {manifest.flips}")
        if manifest.suppression not in SUPPRESSIONS:
            raise ValueError(f"suppression must be one of {SUPPRESSIONS}")
        if not 0.0 <= manifest.min_distance_px <= 32.0:
            raise ValueError("min_distance_px must be within 0..32")
        if not 0.0 <= manifest.aligned_distance_px <= 32.0:
            raise ValueError("aligned_distance_px must be within 0..32")
        if not 0 <= manifest.min_minutiae <= 150:
            raise ValueError("min_minutiae must be within 0..150")
        if not 0.0 < manifest.floor_threshold <= 1.0:
            raise ValueError("floor_threshold must be within (0, 1]")
        return manifest
    except FileNotFoundError as exc:
        raise ModelIntegrityError(f"model manifest {path} is missing", path) from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelIntegrityError(f"model manifest {path} is unreadable: {exc}", path) from exc


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(manifest: ModelManifest) -> None:
    """Raise :class:`ModelIntegrityError` unless the model file exists with the stated sha256."""
    path = manifest.model_path
    if not path.is_file():
        raise ModelIntegrityError(
            f"model file {path} is missing (expected sha256 {manifest.sha256})",
            path,
            manifest.sha256,
        )
    actual = file_sha256(path)
    if actual != manifest.sha256:
        raise ModelIntegrityError(
            f"model file {path} has sha256 {actual}, expected sha256 {manifest.sha256}",
            path,
            manifest.sha256,
        )


def verify_tensors(
    manifest: ModelManifest, kind: str, stated: tuple[TensorSpec, ...], found: list[Any]
) -> None:
    """Compare onnxruntime's ``NodeArg`` list with the manifest's specs for ``kind`` tensors."""
    got = [(a.name, tuple(a.shape), ORT_DTYPES.get(a.type, a.type)) for a in found]
    want = [(s.name, s.shape, s.dtype) for s in stated]
    if got != want:
        raise ModelIntegrityError(
            f"model file {manifest.model_path} {kind} are {got}, manifest says {want} "
            f"(expected sha256 {manifest.sha256})",
            manifest.model_path,
            manifest.sha256,
        )
