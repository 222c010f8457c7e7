"""The shipped minutiae model: ``minutiae.onnx``, its ``manifest.json`` and its model card.

Package data only; the runtime finds these files with ``importlib.resources`` so that an
installed station reads them from its own site-packages, never from a source checkout.
"""
