"""Bytes to text for text consultations: BOMs, BOM-less UTF-16, strict UTF-8, then CP949, and
a readable refusal of anything that is really binary.

Contact-centre systems export in whatever their vendor chose, so decoding is defensive.
"""

from __future__ import annotations

import unicodedata

from cscoach_pipeline.defs.speech.text_import.base import TextImportError

# No encoding we read spends more than 4 bytes on a character.
MAX_BYTES_PER_CHAR = 4

_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
# Control characters that legitimately occur in text files.
_ALLOWED_CONTROLS = frozenset("\t\n\r\f")
_ALLOWED_CONTROL_BYTES = frozenset(b"\t\n\r\f")
_MAX_BAD_CHAR_RATIO = 0.05


def _format_pct(ratio: float) -> str:
    pct = ratio * 100
    return "<1" if 0 < pct < 1 else f"{pct:.0f}"


def _binary_byte_ratio(data: bytes) -> float:
    bad = sum(1 for b in data if (b < 0x20 and b not in _ALLOWED_CONTROL_BYTES) or b == 0x7F)
    return bad / len(data)


def _bad_char_ratio(text: str) -> float:
    """Share of characters that no text file should contain (controls, unassigned, private)."""
    if not text:
        return 0.0
    bad = 0
    for ch in text:
        if ch in _ALLOWED_CONTROLS or ch == "\ufeff":
            continue
        if unicodedata.category(ch) in ("Cc", "Cn", "Co", "Cs"):
            bad += 1
    return bad / len(text)


def _not_text(ratio: float) -> TextImportError:
    return TextImportError(
        f"file is not text: {_format_pct(ratio)}% of bytes are binary/control characters"
    )


def _sniff_utf16(data: bytes) -> str | None:
    """Guess the byte order of BOM-less UTF-16 from where the NUL bytes sit.

    ASCII (and the spaces, digits and punctuation of Korean text) encodes as one zero byte per
    code unit, always on the same side; binary files scatter NULs on both sides.
    """
    if len(data) < 2 or len(data) % 2:
        return None
    pairs = len(data) // 2
    nul_even = data[0::2].count(0) / pairs
    nul_odd = data[1::2].count(0) / pairs
    if nul_odd >= 0.1 and nul_even <= nul_odd * 0.1:
        return "utf-16-le"
    if nul_even >= 0.1 and nul_odd <= nul_even * 0.1:
        return "utf-16-be"
    return None


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode a text file's bytes, returning ``(text, encoding_name)``.

    Order: BOM, strict UTF-8, BOM-less UTF-16 (NUL-byte pattern), CP949 (the Windows superset of
    EUC-KR that Korean contact-centre software still writes). The result has no leading BOM and
    ``\\n`` newlines. Raises :class:`TextImportError` for empty, whitespace-only or binary input.
    """
    if not data:
        raise TextImportError("file is empty (0 bytes)")

    text: str | None = None
    encoding = ""
    for bom, name in _BOMS:
        if data.startswith(bom):
            try:
                text, encoding = data.decode(name), name
            except UnicodeDecodeError as exc:
                raise TextImportError(
                    f"file is not text: it starts with a {name} byte-order mark but byte "
                    f"{exc.start} is not valid {name}"
                ) from exc
            break

    if text is None and b"\x00" in data:
        # UTF-8 would happily decode NULs, so decide between UTF-16 and binary first.
        guess = _sniff_utf16(data)
        if guess is not None:
            try:
                text, encoding = data.decode(guess), guess
            except UnicodeDecodeError:
                text = None
        if text is None:
            raise _not_text(_binary_byte_ratio(data))

    if text is None:
        for name in ("utf-8", "cp949"):
            try:
                text, encoding = data.decode(name), name
                break
            except UnicodeDecodeError:
                continue
    if text is None:
        ratio = _binary_byte_ratio(data)
        if ratio > 0:
            raise _not_text(ratio)
        raise TextImportError("file is not text: it is not valid UTF-8, UTF-16 or CP949")

    bad = _bad_char_ratio(text)
    if bad > _MAX_BAD_CHAR_RATIO:
        raise _not_text(bad)

    text = text.removeprefix("\ufeff")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n")
    if not text.strip():
        raise TextImportError(f"file contains only whitespace ({len(data)} bytes)")
    return text, encoding
