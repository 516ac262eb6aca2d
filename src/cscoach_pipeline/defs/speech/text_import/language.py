"""Which language a text consultation is in, from the script its letters use."""

from __future__ import annotations


def _is_hangul(ch: str) -> bool:
    o = ord(ch)
    return 0xAC00 <= o <= 0xD7A3 or 0x1100 <= o <= 0x11FF or 0x3130 <= o <= 0x318F


def _is_latin(ch: str) -> bool:
    o = ord(ch)
    return (
        ("a" <= ch <= "z") or ("A" <= ch <= "Z") or (0xC0 <= o <= 0x24F and o not in (0xD7, 0xF7))
    )


def detect_language(text: str) -> str | None:
    """Return "ko" if Hangul dominates the letters, "en" if Latin does, else None.

    A Hangul syllable block carries two or three letters' worth of sound, so it counts double:
    Korean consultations are full of English product names and should still come out "ko".
    """
    hangul = latin = letters = 0
    for ch in text:
        if not ch.isalpha():
            continue
        letters += 1
        if _is_hangul(ch):
            hangul += 1
        elif _is_latin(ch):
            latin += 1
    if letters == 0 or (hangul + latin) * 2 < letters:
        return None  # no letters, or another script (Japanese, Chinese, ...) dominates
    return "ko" if hangul * 2 >= latin else "en"
