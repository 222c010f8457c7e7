"""The station's models: shipped ONNX files with their manifests, and the code that trains them."""
