"""The minutiae extractor's configuration section, kept beside the code it configures."""

from __future__ import annotations

from pathlib import Path

from pydantic import ConfigDict, Field

from appliance.strict import Strict


class MinutiaeConfig(Strict):
    """Where the minutiae model is and how it runs."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False,
                              protected_namespaces=())

    model_dir: Path | None = Field(
        None,
        description="Folder holding a minutiae ONNX model and its manifest.json; empty: the "
        "model that ships with the station.",
    )
    threads: int = Field(
        1, ge=1, le=16, description="onnxruntime intra-op threads for one extraction."
    )
    threshold: float | None = Field(
        None,
        gt=0.0,
        lt=1.0,
        description="Detection threshold (0..1) overriding the manifest's; empty keeps it.",
    )
    release_memory: bool = Field(
        True,
        description="Give the model's working memory back to the system after each "
        "extraction: prints of many sizes then no longer keep the largest one's buffers "
        "allocated, at a few per cent more time per image. Takes effect only with "
        "system.malloc_mmap_threshold_kb set (glibc's sliding threshold would raise the peak "
        "instead). benchmarks/station_bench.py --keep-model-memory and "
        "benchmarks/minutiae_eval.py (c), row model-keep, compare.",
    )

    def build(self):
        """The extractor this section describes (checks the model against its manifest)."""
        from appliance.minutiae.extractor import MinutiaeExtractor

        return MinutiaeExtractor(
            self.model_dir,
            threads=self.threads,
            threshold=self.threshold,
            release_memory=self.release_memory,
        )
