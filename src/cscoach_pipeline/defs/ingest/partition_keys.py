"""Consultation ids (= Dagster dynamic partition keys) derived from object keys.

Stable (same object key -> same id), readable (the file's path), safe: no commas (Dagster
partition ranges), slashes or spaces; unique via a short hash of the full key. Private: a
phone number, email, card or RRN in the file name is redacted from the readable part (the hash
still comes from the real key, so ids stay unique), and `display_key` is the key as text safe
to show in tables, run tags and logs.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from cscoach_pipeline.defs.privacy.pii import redact_text

MAX_READABLE_CHARS = 80
MAX_READABLE_BYTES = 255 - 9  # "-" + 8 hex digits of hash
_UNSAFE = re.compile(r"[^\w.\-]+", re.UNICODE)
_RANGE_DOTS = re.compile(r"\.{3,}")  # "..." separates a Dagster partition range
# A redaction placeholder ("[PHONE]") reads as its bare kind in an id: brackets are unsafe in
# object keys (S3 lists them among the characters to avoid).
_PLACEHOLDER = re.compile(r"\[([A-Z]{2,16})\]")
# What counts as a file extension, kept out of redaction so `kim@corp.com.txt` stays `.txt`.
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,8}$")


def _as_text(key: str) -> str:
    """The key as valid Unicode text: a stray surrogate (an undecoded byte from a file name)
    becomes `\\xNN`, never an error. Stores already give text keys; this is the safety net."""
    try:
        key.encode("utf-8")
        return key
    except UnicodeEncodeError:
        pass
    try:
        raw = key.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = key.encode("utf-8", "backslashreplace")
    return raw.decode("utf-8", "backslashreplace")


def _redact_name(name: str) -> str:
    """One path component with PII replaced; the extension is kept out of the match, then the
    whole component is swept again so nothing the split hid (`x@corp` + `.com`) survives."""
    match = _EXTENSION.search(name)
    if match and match.start() > 0:
        name = redact_text(name[: match.start()]) + match.group()
    return redact_text(name)


def _redact_path(path: str) -> str:
    return "/".join(_redact_name(part) if part else part for part in path.split("/"))


def display_key(source_key: str) -> str:
    """The object key as text safe to show in tables, metadata, run tags and logs: valid UTF-8,
    PII redacted per path component, e.g. `incoming/team-a/call-[PHONE].wav`."""
    return _redact_path(_as_text(source_key))


def consultation_id_for(source_key: str, incoming_prefix: str = "incoming/") -> str:
    relative = (
        source_key[len(incoming_prefix) :]
        if source_key.startswith(incoming_prefix)
        else (source_key)
    )
    text = _redact_path(unicodedata.normalize("NFC", _as_text(relative)))
    text = _PLACEHOLDER.sub(r"\1", text).replace("/", "__")
    readable = _RANGE_DOTS.sub(".", _UNSAFE.sub("-", text)).strip("-_.") or "consultation"
    if len(readable) > MAX_READABLE_CHARS:
        readable = readable[:MAX_READABLE_CHARS].rstrip("-_.")
    # The id names a folder (artifacts/<id>/): with its hash it must fit NAME_MAX (255 bytes).
    while len(readable.encode("utf-8")) > MAX_READABLE_BYTES:
        readable = readable[:-1].rstrip("-_.")
    # The hash is of the real key (not the redacted one): distinct files keep distinct ids.
    digest = hashlib.sha1(source_key.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{readable}-{digest}"
