"""The seven FER-2013 emotions, the official splits, and folder-name aliases."""

from __future__ import annotations

# FER-2013 label order: index i in a label array means LABELS[i].
LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# Official FER-2013 splits, in the order their integer codes use in the cache.
SPLITS: tuple[str, ...] = ("Training", "PublicTest", "PrivateTest")

# Folder names people use for the same emotion in other datasets (lower-case).
_ALIASES: dict[str, str] = {
    "anger": "angry",
    "disgusted": "disgust",
    "fearful": "fear",
    "scared": "fear",
    "happiness": "happy",
    "sadness": "sad",
    "surprised": "surprise",
    "neutrality": "neutral",
}


def label_index(name: str) -> int | None:
    """Return the FER-2013 index of an emotion folder name, or None if it is not one."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    return LABELS.index(key) if key in LABELS else None
