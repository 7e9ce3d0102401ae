"""A run's generator for tools outside Python and JAX: ONNX models and bioimage.io packages."""
