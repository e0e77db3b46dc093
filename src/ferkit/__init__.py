"""ferkit: facial emotion recognition on FER-2013.

Importing ferkit is cheap and has no side effects: heavy modules (OpenCV, matplotlib,
ONNX Runtime, torch) are imported by the functions that need them.
"""

from ferkit.emotions import LABELS, SPLITS

__version__ = "0.1.0"

__all__ = ["LABELS", "SPLITS", "__version__"]
