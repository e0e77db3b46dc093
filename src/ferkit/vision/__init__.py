"""Faces in images: decoding, detection, crop and align, `EmotionRecognizer`, drawing.
Runs on OpenCV, dlib and ONNX Runtime; no torch."""
