"""`ferkit data download`: fetch FER-2013 with the official Kaggle client, then prepare it."""

from __future__ import annotations

import os
from pathlib import Path

from ferkit.core.errors import FerkitError

DATASET = "msambare/fer2013"  # Kaggle's image-folder version of FER-2013
HOW_TO = (
    "either set up Kaggle credentials (https://www.kaggle.com/settings -> API -> "
    "~/.kaggle/kaggle.json or KAGGLE_USERNAME/KAGGLE_KEY; `pip install ferkit[download]`) "
    "and run `ferkit data download` again, or download "
    f"https://www.kaggle.com/datasets/{DATASET} by hand and run "
    "`ferkit data prepare archive.zip --out DIR`"
)


def has_credentials() -> bool:
    """True when the Kaggle client would find credentials (env vars or a kaggle.json)."""
    if os.environ.get("KAGGLE_API_TOKEN") or (
        os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY")
    ):
        return True
    config_dir = Path(os.environ.get("KAGGLE_CONFIG_DIR", Path.home() / ".kaggle"))
    return (config_dir / "kaggle.json").is_file() or (config_dir / "access_token").is_file()


def download(dest: Path) -> Path:
    """Download the Kaggle zip into `dest` and return its path; fail fast without credentials."""
    if not has_credentials():
        raise FerkitError(f"no Kaggle credentials found; {HOW_TO}")
    try:
        from kaggle.api.kaggle_api_extended import KaggleApi
    except ImportError:
        raise FerkitError(f"the Kaggle client is not installed; {HOW_TO}") from None
    dest.mkdir(parents=True, exist_ok=True)
    try:
        api = KaggleApi()
        api.authenticate()
        api.dataset_download_files(DATASET, path=str(dest), unzip=False, quiet=False)
    except Exception as exc:  # the client raises many types for network and auth failures
        raise FerkitError(f"Kaggle download failed ({exc}); {HOW_TO}") from None
    zips = sorted(dest.glob("*.zip"))
    if not zips:
        raise FerkitError(f"Kaggle download left no zip in {dest}; {HOW_TO}")
    return zips[0]
