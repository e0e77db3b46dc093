"""The real Kaggle FER-2013 archive: exact official split and class counts."""

from __future__ import annotations

import pytest

from ferkit.core.labels import LABELS
from ferkit.data import load_cache
from ferkit.data.prepare import PrepareConfig, prepare
from tests.conftest import SHARED_ARCHIVE

# From ../shared/README.md (train / public / private), in FER-2013 label order.
EXPECTED = {
    "angry": (3995, 467, 491),
    "disgust": (436, 56, 55),
    "fear": (4097, 496, 528),
    "happy": (7215, 895, 879),
    "sad": (4830, 653, 594),
    "surprise": (3171, 415, 416),
    "neutral": (4965, 607, 626),
}

pytestmark = pytest.mark.skipif(
    not SHARED_ARCHIVE.is_file(), reason=f"real FER-2013 archive not present at {SHARED_ARCHIVE}"
)


def test_real_archive_has_the_official_splits(tmp_path):
    result = prepare(PrepareConfig(source=SHARED_ARCHIVE, out=tmp_path / "fer"))
    cache = load_cache(tmp_path / "fer")
    counts = cache.counts()
    assert [sum(counts[s]) for s in ("Training", "PublicTest", "PrivateTest")] == [
        28709,
        3589,
        3589,
    ]
    for i, name in enumerate(LABELS):
        got = (counts["Training"][i], counts["PublicTest"][i], counts["PrivateTest"][i])
        assert got == EXPECTED[name], name
    assert cache.images.shape == (35887, 48, 48)
    assert result.manifest["unreadable_skipped"] == 0
    assert result.manifest["cross_split_duplicates"] > 0  # FER-2013 has known duplicates
    assert str(cache.ids[0]).startswith(("test/", "train/"))
