"""Faces in images: decoding, detection, crop and align, `EmotionRecognizer`, drawing.
Runs on OpenCV and ONNX Runtime (dlib only for its optional detector); no torch."""
