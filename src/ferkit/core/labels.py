"""The seven FER-2013 emotions, their colours, the official splits, and folder-name aliases."""

from __future__ import annotations

# FER-2013 label order: index i in a label array means LABELS[i].
LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# One colour per emotion (BGR), FER-2013 order; colour-blind-safe Okabe-Ito hues.
COLOURS = {
    "angry": (0, 94, 213),
    "disgust": (115, 158, 0),
    "fear": (167, 121, 204),
    "happy": (66, 228, 240),
    "sad": (178, 114, 0),
    "surprise": (0, 159, 230),
    "neutral": (180, 180, 180),
}

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
