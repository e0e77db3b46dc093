"""The ONNX model-file contract: metadata, shipped models and their SHA-256, the
`Classifier` every command infers with, and scoring a model on a split. No torch."""
