"""FER-2013 ingest: read any source, validate, cache with the official splits.

`load_cache(dir)` is the one call training and evaluation use to get the data.
"""

from ferkit.data.cache import Cache, load_cache, resize_faces

__all__ = ["Cache", "load_cache", "resize_faces"]
