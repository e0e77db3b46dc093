"""ferkit: facial emotion recognition on FER-2013.

Importing ferkit is cheap and has no side effects: heavy modules (OpenCV, matplotlib,
ONNX Runtime, torch) are imported by the functions that need them.
"""

from ferkit.core.labels import LABELS, SPLITS
from ferkit.core.version import __version__

__all__ = ["LABELS", "SPLITS", "EmotionRecognizer", "Face", "__version__"]


def __getattr__(name: str):
    """`from ferkit import EmotionRecognizer` without importing OpenCV and ONNX Runtime at
    `import ferkit` time."""
    if name in ("EmotionRecognizer", "Face"):
        from ferkit.vision import recognize

        return getattr(recognize, name)
    raise AttributeError(f"module 'ferkit' has no attribute {name!r}")
