"""The NBIS binding, found once, and the one engine that serves NFIQ 2, MINDTCT and BOZORTH3.

NIST's NFIQ 2, MINDTCT and BOZORTH3 run through a maintained Python binding of NBIS:
``nbis-python`` (glibc 2.38 and newer) or ``nbis-py`` (older systems). Both install the module
``nbis``; :func:`load_backend` finds out which distribution is present and loads it once.

Building a binding extractor loads NFIQ 2's random-forest model (about half a second to a
second), and one extractor does all three jobs: with NFIQ 2 on, the result of one call carries
both the NFIQ 2 score and MINDTCT's minutiae, and the same object loads templates for BOZORTH3.
So the station builds one :class:`NbisEngine` at start-up and every stage uses it.

Handing an image over: the binding's ``extract_minutiae(bytes)`` copies its argument into native
memory one byte at a time in Python (its generated buffer writer loops over the bytes), which
costs about as much as MINDTCT itself on a 500 ppi print and holds the GIL throughout. Its
``extract_minutiae_from_image_file(path)`` reads the image natively instead. The engine writes
each image, as an uncompressed PGM, into an anonymous in-memory file (``memfd``: never on disk,
visible to no other process, emptied after each call) and passes that path. NFIQ 2 refuses
made-up patterns, so the first print an engine sees goes both ways: the path is used from then
on only if the score, the features and the minutiae are identical; otherwise, or when a release
lacks the file method, the engine keeps to the binding's own way.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import io
import logging
import math
import os
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
from PIL import Image

from appliance.domain import Minutia, MinutiaType
from appliance.imaging.errors import QualityBackendUnavailable, TemplateError
from appliance.imaging.resample import NATIVE_PPI

log = logging.getLogger(__name__)

#: Distributions that provide the ``nbis`` module, in order of preference.
BACKEND_DISTRIBUTIONS: tuple[str, ...] = ("nbis-python", "nbis-py")


@dataclass(frozen=True, slots=True)
class Backend:
    """The NBIS binding in use: its distribution, version and module."""

    distribution: str
    version: str
    module: ModuleType

    @property
    def name(self) -> str:
        """e.g. ``nbis-py 0.1.3``: what the reports name as their NFIQ 2 backend."""
        return f"{self.distribution} {self.version}"

    def new_extractor(self, *, nfiq2: bool, ppi: float = NATIVE_PPI) -> Any:
        """An NBIS extractor (MINDTCT, and NFIQ 2 when ``nfiq2``): slow, build it once."""
        nb = self.module
        settings = nb.NbisExtractorSettings(
            min_quality=0.0,
            get_center=False,
            check_fingerprint=False,
            compute_nfiq2=nfiq2,
            ppi=float(ppi),
        )
        try:
            return nb.new_nbis_extractor(settings)
        except Exception as exc:  # the binding's own error types vary between releases
            raise QualityBackendUnavailable(
                f"{self.name} could not create an NBIS extractor: {exc!r}"
            ) from exc

    def errors(self) -> tuple[type[BaseException], ...]:
        """The exception classes the binding raises for a bad image or a failed NFIQ 2."""
        found = [getattr(self.module, n, None) for n in ("NbisError", "InternalError")]
        return tuple(e for e in found if isinstance(e, type))


_backend: Backend | None = None
_backend_lock = threading.Lock()


def load_backend() -> Backend:
    """The first NBIS binding that imports (nbis-python, then nbis-py), loaded once.

    Raises :class:`QualityBackendUnavailable`, naming what was tried, when none does.
    """
    global _backend
    with _backend_lock:
        if _backend is not None:
            return _backend
        tried: list[str] = []
        for dist in BACKEND_DISTRIBUTIONS:
            try:
                version = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                tried.append(f"{dist}: not installed")
                continue
            try:
                module = importlib.import_module("nbis")
            except (ImportError, OSError) as exc:  # OSError: shared library needs newer glibc
                tried.append(f"{dist} {version}: {exc}")
                continue
            if not hasattr(module, "new_nbis_extractor"):
                tried.append(f"{dist} {version}: module nbis lacks new_nbis_extractor")
                continue
            _backend = Backend(dist, version, module)
            log.info("NFIQ 2 backend: %s", _backend.name)
            return _backend
        raise QualityBackendUnavailable(
            "no NFIQ 2 binding imports; install nbis-python (glibc >= 2.38) or nbis-py: "
            + "; ".join(tried)
        )


def backend_name() -> str:
    """Name and version of the NFIQ 2 binding in use; raises if there is none."""
    return load_backend().name


def encode_png(image: np.ndarray) -> bytes:
    """Lossless PNG bytes of a uint8 grayscale image: what the binding's own way reads."""
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def encode_pgm(image: np.ndarray) -> tuple[bytes, memoryview]:
    """Header and pixels of a binary PGM (P5) of a contiguous uint8 grayscale image."""
    h, w = image.shape
    return f"P5\n{w} {h}\n255\n".encode("ascii"), memoryview(np.ascontiguousarray(image)).cast("B")


class _MemoryFile:
    """An anonymous in-memory file the binding can open by path (Linux ``memfd``)."""

    def __init__(self) -> None:
        self.fd = os.memfd_create("nbis-image", os.MFD_CLOEXEC)
        self.path = f"/proc/self/fd/{self.fd}"

    def hold(self, image: np.ndarray) -> None:
        header, pixels = encode_pgm(image)
        os.ftruncate(self.fd, 0)
        os.pwritev(self.fd, [header, pixels], 0)

    def empty(self) -> None:
        os.ftruncate(self.fd, 0)

    def close(self) -> None:
        os.close(self.fd)


class NbisEngine:
    """One NBIS extractor for NFIQ 2, MINDTCT and BOZORTH3; build once, use from any thread.

    Calls are serialised by one lock: the binding does not promise thread safety, and the
    station runs image work on one thread anyway.
    """

    def __init__(self, backend: Backend | None = None) -> None:
        self.backend = backend or load_backend()
        self._extractor = self.backend.new_extractor(nfiq2=True)
        self.errors = self.backend.errors()
        self._lock = threading.Lock()
        self._file: _MemoryFile | None = None
        self._verified = False
        if hasattr(self._extractor, "extract_minutiae_from_image_file"):
            try:
                self._file = _MemoryFile()
            except OSError as exc:
                log.warning("NBIS: no in-memory file (%s); images go through the binding's copy",
                            exc)

    @property
    def name(self) -> str:
        """The binding, as reports name it."""
        return self.backend.name

    @property
    def hands_over_natively(self) -> bool | None:
        """True once images reach the binding without its per-byte copy; None until known."""
        if self._file is None:
            return False
        return True if self._verified else None

    def extract(self, image: np.ndarray) -> Any:
        """The binding's result for a 500 ppi uint8 image: ``.quality()`` and ``.get()``.

        Raises the binding's own errors (:attr:`errors`) for an image it cannot process.
        """
        with self._lock:
            if self._file is None:
                return self._extractor.extract_minutiae(encode_png(image))
            if not self._verified:
                return self._verify(image)
            try:
                self._file.hold(image)
                return self._extractor.extract_minutiae_from_image_file(self._file.path)
            finally:
                self._file.empty()

    def load_template(self, template: bytes) -> Any:
        """The binding's minutiae set for a template; raises :class:`TemplateError`."""
        with self._lock:
            try:
                return self._extractor.load_iso_19794_2_2005(template)
            except self.errors as exc:
                raise TemplateError(f"the matcher cannot read a template: {exc!r}") from exc

    def compare(self, a: Any, b: Any) -> int:
        """BOZORTH3 score of two loaded templates (symmetric; 0 = nothing in common)."""
        with self._lock:
            return int(a.compare(b))

    def _verify(self, image: np.ndarray) -> Any:
        """The binding's own result; the path is kept only if it gives the same (lock held)."""
        assert self._file is not None
        own = self._extractor.extract_minutiae(encode_png(image))  # its errors: undecided
        try:
            self._file.hold(image)
            native = self._extractor.extract_minutiae_from_image_file(self._file.path)
            same = same_result(own, native)
        except Exception as exc:  # whatever a release raises here only means: keep its own way
            log.warning("NBIS: reading images by path failed (%r); using the binding's copy", exc)
            same = False
        finally:
            self._file.empty()
        if same:
            self._verified = True
        else:
            log.warning("NBIS: %s reads an image by path differently; using its copy", self.name)
            self._file.close()
            self._file = None
        return own


def domain_minutiae(result: Any, scale: float = 1.0) -> list[Minutia]:
    """MINDTCT's minutiae in a binding result, times ``scale`` (500 ppi -> caller's pixels)."""
    return [
        Minutia(
            x=m.x() * scale,
            y=m.y() * scale,
            angle=math.radians(m.angle()),
            kind=MinutiaType.BIFURCATION if m.kind().name == "BIFURCATION" else MinutiaType.ENDING,
            quality=int(round(100 * max(0.0, min(1.0, m.reliability())))),
        )
        for m in result.get()
    ]


def minutiae_of(result: Any) -> list[tuple[int, int, int, str, float]]:
    """MINDTCT's minutiae in a binding result, as plain tuples (for comparing results)."""
    return [(m.x(), m.y(), m.angle(), m.kind().name, m.reliability()) for m in result.get()]


def same_result(a: Any, b: Any) -> bool:
    """True when two binding results hold the same NFIQ 2 score, features and minutiae."""
    qa, qb = a.quality(), b.quality()
    features_a = [(v.name, v.value) for v in [*qa.actionable, *qa.features]]
    features_b = [(v.name, v.value) for v in [*qb.actionable, *qb.features]]
    return (qa.score == qb.score and features_a == features_b
            and minutiae_of(a) == minutiae_of(b))
