"""Consultation ids (= Dagster dynamic partition keys) derived from object keys.

Stable (same object key -> same id), readable (the file's path), safe: no commas (Dagster
partition ranges), slashes or spaces; unique via a short hash of the full key.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

MAX_READABLE_CHARS = 80
_UNSAFE = re.compile(r"[^\w.\-]+", re.UNICODE)
_RANGE_DOTS = re.compile(r"\.{3,}")  # "..." separates a Dagster partition range


def consultation_id_for(source_key: str, incoming_prefix: str = "incoming/") -> str:
    relative = (
        source_key[len(incoming_prefix) :]
        if source_key.startswith(incoming_prefix)
        else (source_key)
    )
    text = unicodedata.normalize("NFC", relative).replace("/", "__")
    readable = _RANGE_DOTS.sub(".", _UNSAFE.sub("-", text)).strip("-_.") or "consultation"
    if len(readable) > MAX_READABLE_CHARS:
        readable = readable[:MAX_READABLE_CHARS].rstrip("-_.")
    digest = hashlib.sha1(source_key.encode("utf-8")).hexdigest()[:8]
    return f"{readable}-{digest}"
