"""Training code for the minutiae extractor (needs the ``train`` extra: torch, onnx).

Run ``python -m models.training.train --out models/minutiae`` from the repository root.
"""
