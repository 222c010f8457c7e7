"""The station's minutiae extractor: the shipped ONNX model run through onnxruntime.

The model works on 500 ppi prints; other resolutions are resampled on the way in and the
minutiae mapped back to the caller's pixels. The image is normalised (mean and spread of its
grey levels), padded to a multiple of the model's stride, and the output maps decoded by
:mod:`appliance.minutiae.decode`; the type (ending or bifurcation) is read from the grey levels
by :mod:`appliance.minutiae.kind`. Directions follow ISO/IEC 19794-2 (radians counter-clockwise
from +x as seen on screen, y down), the convention of :class:`appliance.domain.Minutia`.

A blank, tiny or malformed image is a verdict (no minutiae), never an exception: the capture
flow shows the officer a retake prompt, it does not crash.
"""

from __future__ import annotations

import logging
import math
from importlib import resources
from pathlib import Path

import numpy as np

from appliance.domain import Minutia, MinutiaType
from appliance.imaging.resample import as_gray_u8, resample
from appliance.minutiae.decode import (
    FLIP_SETS,
    Detections,
    average,
    decode,
    kept_count,
    mirror,
    unmirror,
)
from appliance.minutiae.errors import MinutiaeModelError, ModelIntegrityError
from appliance.minutiae.kind import bifurcation_mask
from appliance.minutiae.manifest import load_manifest, verify_file, verify_tensors

log = logging.getLogger(__name__)



def shipped_model_dir() -> Path:
    """The folder of the model that ships with the station (package data of models.minutiae)."""
    folder = resources.files("models.minutiae")
    if not isinstance(folder, Path):  # an installation from a zip file: not supported
        raise MinutiaeModelError(f"the shipped model is not a plain folder: {folder}")
    return folder


#: The shipped model's folder.
DEFAULT_MODEL_DIR = shipped_model_dir()
#: Resolutions accepted by :meth:`MinutiaeExtractor.extract` (pixels per inch). Below about
#: 250 ppi a ridge period (about 0.46 mm) spans fewer than 5 pixels: the ridges are not resolved
#: and resampling to 500 ppi would invent them. Scanners for booking image at 500 or 1000 ppi.
PPI_RANGE = (250, 2000)
#: Smallest side (pixels at 500 ppi) worth looking at: about two ridge periods.
MIN_SIDE = 24
#: Grey-level spread under which an image holds no ridges at all.
MIN_SPREAD = 3.0
#: Spread floor of the normalisation, so that faint noise is not blown up into ridges.
NORM_FLOOR = 8.0


def normalise(image: np.ndarray) -> np.ndarray:
    """The network's input scale: grey levels minus their mean, over their spread (>= 8)."""
    x = image.astype(np.float32)
    return (x - float(x.mean())) / max(float(x.std()), NORM_FLOOR)


class MinutiaeExtractor:
    """Minutiae of fingerprint images, from the ONNX model in ``model_dir``.

    The constructor checks the model against its manifest (file sha256, input and output names,
    shapes and types) and raises :class:`ModelIntegrityError` on any difference. One instance
    may be shared by threads: onnxruntime sessions are thread-safe for ``run``.

    ``release_memory`` hands onnxruntime's arena back after each image; use it with a fixed
    glibc mmap threshold, as the station sets (``system.malloc_mmap_threshold_kb``).
    """

    def __init__(
        self,
        model_dir: Path | None = None,
        threads: int = 1,
        threshold: float | None = None,
        release_memory: bool = False,
    ) -> None:
        self.manifest = load_manifest(Path(model_dir) if model_dir else DEFAULT_MODEL_DIR)
        verify_file(self.manifest)
        self.threshold = float(threshold) if threshold is not None else self.manifest.threshold
        self.releases_memory = bool(release_memory)
        try:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = max(1, int(threads))
            options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            options.log_severity_level = 3
            # The last run of an image hands the arena's free chunks back: prints come in many
            # sizes, and the arena otherwise keeps the largest run's buffers for good. The
            # mirrored runs before it reuse the buffers (shrinking after each costs time).
            self._keep_options = ort.RunOptions()
            self._last_options = ort.RunOptions()
            if release_memory:
                self._last_options.add_run_config_entry(
                    "memory.enable_memory_arena_shrinkage", "cpu:0"
                )
            self._session = ort.InferenceSession(
                str(self.manifest.model_path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own unrelated classes
            raise ModelIntegrityError(
                f"model file {self.manifest.model_path} cannot be loaded: {exc} "
                f"(expected sha256 {self.manifest.sha256})",
                self.manifest.model_path,
                self.manifest.sha256,
            ) from exc
        verify_tensors(self.manifest, "inputs", self.manifest.inputs, self._session.get_inputs())
        verify_tensors(
            self.manifest, "outputs", self.manifest.outputs, self._session.get_outputs()
        )
        self._input = self.manifest.inputs[0].name
        self._outputs = [s.name for s in self.manifest.outputs]
        self._warm = False

    @property
    def stride(self) -> int:
        """Output stride of the model (pixels at 500 ppi per output cell)."""
        return self.manifest.stride

    @property
    def ready(self) -> bool:
        """True once :meth:`warm_up` ran (the first inference allocates its buffers)."""
        return self._warm

    def warm_up(self) -> None:
        """Run the model once on a dummy print-sized input, so the first booking is not slow."""
        self._run(np.zeros((480, 400), dtype=np.float32))
        self._warm = True

    def extract(self, image: np.ndarray, ppi: int = 500) -> list[Minutia]:
        """Minutiae of ``image`` (uint8, 2-D; dark ridges) scanned at ``ppi``, strongest first.

        Coordinates are pixels of ``image``; quality is the model's confidence 0..100. Raises
        ``ValueError`` only for a resolution outside :data:`PPI_RANGE`.
        """
        if not PPI_RANGE[0] <= ppi <= PPI_RANGE[1]:
            raise ValueError(f"resolution {ppi} ppi is outside {PPI_RANGE[0]}..{PPI_RANGE[1]}")
        detections = self.detect(image, ppi)
        scale = float(ppi) / float(self.manifest.ppi)
        out = []
        for i in range(len(detections)):
            out.append(
                Minutia(
                    x=float((detections.x[i] + 0.5) * scale - 0.5),
                    y=float((detections.y[i] + 0.5) * scale - 0.5),
                    angle=float(detections.angle[i]) % (2 * math.pi),
                    kind=(
                        MinutiaType.BIFURCATION if detections.bifurcation[i] else MinutiaType.ENDING
                    ),
                    quality=int(np.clip(round(100.0 * float(detections.probability[i])), 1, 100)),
                )
            )
        return out

    def detect(self, image: np.ndarray, ppi: int = 500) -> Detections:
        """Raw detections in pixels of the image resampled to the model's resolution."""
        gray = as_gray_u8(image)
        empty = Detections(*(np.zeros(0) for _ in range(4)), np.zeros(0))
        if gray is None:
            log.warning("minutiae: refused an image that is not 2-D uint8")
            return empty
        if min(gray.shape) * self.manifest.ppi < MIN_SIDE * ppi:
            return empty
        gray = resample(gray, ppi, self.manifest.ppi)
        if float(gray.std()) < MIN_SPREAD:
            return empty
        heat, offset, direction, kind = self._run(normalise(gray))
        h, w = gray.shape
        least = self.manifest.min_minutiae
        floor = min(self.manifest.floor_threshold, self.threshold) if least else self.threshold
        found = decode(
            heat[0, 0],
            offset[0],
            direction[0],
            kind[0, 0],
            stride=self.stride,
            threshold=floor,
            min_distance=self.manifest.min_distance_px,
            suppression=self.manifest.suppression,
            aligned_distance=self.manifest.aligned_distance_px,
        )
        inside = (found.x >= -0.5) & (found.x < w - 0.5) & (found.y >= -0.5) & (found.y < h - 0.5)
        found = found.take(inside)
        # Strongest first, so the suppression's survivors at or above any threshold are a
        # prefix: the threshold's own, topped up to the manifest's count from the floor.
        found = found.take(slice(0, kept_count(found.probability, self.threshold, least, floor)))
        x, y, angle = found.x, found.y, found.angle
        return Detections(x, y, angle, bifurcation_mask(gray, x, y, angle), found.probability)

    def _run(self, norm: np.ndarray) -> list[np.ndarray]:
        """The model's four output maps for a normalised image, padded to the stride with 0.

        With the manifest's ``flips`` above 1 the model also sees mirror images of the padded
        input (the padded size is a multiple of the stride, so the cells line up) and the maps
        are averaged: fewer spurious minutiae and steadier directions, at that many runs' cost.
        """
        s = self.stride
        h, w = norm.shape
        padded = np.zeros((1, 1, -(-h // s) * s, -(-w // s) * s), dtype=np.float32)
        padded[0, 0, :h, :w] = norm
        runs = []
        flips = FLIP_SETS[self.manifest.flips]
        try:
            for i, (fx, fy) in enumerate(flips):
                options = self._last_options if i == len(flips) - 1 else self._keep_options
                maps = self._session.run(
                    self._outputs, {self._input: mirror(padded, fx, fy)}, options
                )
                runs.append(unmirror(maps, fx, fy) if fx or fy else maps)
        except Exception as exc:  # onnxruntime's own error classes share no public root
            raise MinutiaeModelError(f"minutiae model failed on a {w}x{h} image: {exc}") from exc
        return runs[0] if len(runs) == 1 else average(runs)
