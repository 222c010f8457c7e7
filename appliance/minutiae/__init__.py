"""On-device minutiae extraction: the shipped ONNX model, its manifest check, the decoder.

Typical use::

    extractor = MinutiaeExtractor(config.minutiae.model_dir, threads=config.minutiae.threads)
    extractor.warm_up()
    minutiae = extractor.extract(image, ppi=500)   # list[appliance.domain.Minutia]
"""

from appliance.minutiae.config import MinutiaeConfig
from appliance.minutiae.errors import MinutiaeModelError, ModelIntegrityError
from appliance.minutiae.extractor import DEFAULT_MODEL_DIR, MinutiaeExtractor

__all__ = [
    "DEFAULT_MODEL_DIR",
    "MinutiaeConfig",
    "MinutiaeExtractor",
    "MinutiaeModelError",
    "ModelIntegrityError",
]
