"""Redact personally identifiable information (PII) from consultation transcript text.

Transcripts are redacted before they are written to BI tables or sent to an external LLM.
Text arrives either as typed chat logs or as Whisper speech-to-text output, so the same
number can appear written ("010-1234-5678"), digit-grouped ("555 1234") or spoken ("zero ten
one thousand two hundred thirty four ..."), and emails can be spoken ("john at example dot
com"). English and Korean text are both supported.

Each finding is replaced by a typed placeholder such as ``[PHONE]``. Passes run in a fixed
order, each on the output of the previous one:

1. written emails, 2. spoken emails (both before digits, because emails may contain digits),
3. digit runs: resident registration numbers (RRN), cards (Luhn), phones, then any other
   run of >= 8 digits as an account,
4. spoken number runs (number words mixed with digit groups), typed by a nearby cue word
   such as "phone" or "계좌", otherwise ``[NUMBER]``.

:func:`redact_segments` redacts a conversation's segments (Whisper) or lines (chat) also
across their boundaries, since a dictated number is often cut into pieces: the texts of a
turn window are joined, scanned with the same rules, and each piece becomes the placeholder.

Only the standard-library ``re`` module is used; the functions are pure. Placeholders contain
neither digits, "@", nor number words, so redacting already-redacted text changes nothing.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["PiiKind", "RedactionResult", "redact", "redact_segments", "redact_text"]


class PiiKind(StrEnum):
    """Kinds of PII. The value is the placeholder label: ``PHONE`` -> ``[PHONE]``."""

    PHONE = "PHONE"
    EMAIL = "EMAIL"
    CARD = "CARD"
    RRN = "RRN"
    ACCOUNT = "ACCOUNT"
    NUMBER = "NUMBER"

    @property
    def placeholder(self) -> str:
        return f"[{self.value}]"


@dataclass(frozen=True)
class RedactionResult:
    """Redacted text plus replacement counts keyed by ``PiiKind`` value.

    Only kinds that were actually replaced appear in ``counts``; use ``counts.get(kind, 0)``.
    """

    text: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Total number of replacements of any kind."""
        return sum(self.counts.values())


def redact(text: str) -> RedactionResult:
    """Replace every PII finding in ``text`` with its typed placeholder."""
    scan = _scan(text)
    return RedactionResult(text=scan.text, counts=_ordered(scan.counts))


def redact_text(text: str) -> str:
    """Convenience wrapper: the redacted text only."""
    return redact(text).text


# Segments (Whisper) and lines (chat) cut one dictated number into pieces: "my card is 4111",
# "1111 1111", "1111". A turn window joins the neighbours a number can be split across.
DEFAULT_WINDOW_GAP_S = 15.0
DEFAULT_WINDOW_SEGMENTS = 8
_UNKNOWN_SPEAKERS = frozenset({"", "unknown"})


def redact_segments(
    texts: Sequence[str],
    *,
    starts: Sequence[float | None] | None = None,
    ends: Sequence[float | None] | None = None,
    speakers: Sequence[str | None] | None = None,
    max_gap_s: float = DEFAULT_WINDOW_GAP_S,
    window_segments: int = DEFAULT_WINDOW_SEGMENTS,
) -> list[RedactionResult]:
    """Redact consecutive segments of one conversation, also across segment boundaries.

    Each segment is redacted on its own, as :func:`redact` does. Then the texts of a turn
    window are joined and scanned again: consecutive segments whose gap (``starts[i] -
    ends[i - 1]``) is at most ``max_gap_s`` (untimed text: always), and separately the
    segments of each known speaker with the same gap rule, so a backchannel ("mm-hmm") in
    between does not hide a number. Windows hold at most ``window_segments`` segments and
    overlap by half, so a number cut into up to ``window_segments // 2 + 1`` pieces is
    always seen whole. A finding in the joined text is mapped back: each segment's piece
    becomes the placeholder, and the finding is counted once, in its first segment.

    A finding that crosses a boundary must stand on its own structure (email, RRN, Luhn
    card, a phone with area or country code) or follow a cue word ("card", "phone",
    "account", ...): two unrelated short numbers that merely sit in adjacent segments are
    never joined into an account or a local phone number.

    Returns one :class:`RedactionResult` per input text, in order.
    """
    n = len(texts)
    for name, values in (("starts", starts), ("ends", ends), ("speakers", speakers)):
        if values is not None and len(values) != n:
            raise ValueError(f"{name} has {len(values)} items for {n} texts")
    window_segments = max(2, window_segments)
    combiner = _Combiner(texts)
    for index, text in enumerate(texts):
        for start, end, kind in _scan(text).spans:
            combiner.add(kind, [(index, start, end)], priority=0)

    def timed_gap_ok(prev: int, cur: int) -> bool:
        prev_end = ends[prev] if ends is not None else None
        cur_start = starts[cur] if starts is not None else None
        if prev_end is None or cur_start is None:
            return True  # untimed chat: only the window's size bounds it
        return cur_start - prev_end <= max_gap_s

    streams: list[list[int]] = [list(range(n))]
    if speakers is not None:
        by_speaker: dict[str, list[int]] = {}
        for index, speaker in enumerate(speakers):
            if speaker is not None and speaker.lower() not in _UNKNOWN_SPEAKERS:
                by_speaker.setdefault(speaker, []).append(index)
        # A speaker who has every segment (a monologue) adds nothing to the stream above.
        streams += [m for m in by_speaker.values() if 1 < len(m) < n]
    for stream in streams:
        run: list[int] = []
        for index in stream:
            if not texts[index].strip():
                continue
            if run and not timed_gap_ok(run[-1], index):
                _scan_windows(combiner, texts, run, window_segments)
                run = []
            run.append(index)
        _scan_windows(combiner, texts, run, window_segments)
    return combiner.results()


def _scan_windows(combiner: _Combiner, texts: Sequence[str], run: list[int], size: int) -> None:
    """Scan a run of linked segments in windows of at most ``size`` that overlap by half.

    Every finding is made of digits, number words or an email's "@"/"at"/"dot"/".com", so only
    stretches of such segments are joined, each with the segment before it for its cue.
    """
    stretches: list[list[int]] = []
    for pos, index in enumerate(run):
        if not combiner.hinted(index):
            continue
        if stretches and stretches[-1][-1] == run[pos - 1]:
            stretches[-1].append(index)
        else:
            stretches.append(run[pos - 1 : pos + 1] if pos else [index])
    stride = max(1, size // 2)
    for stretch in stretches:
        for first in range(0, max(1, len(stretch) - size + stride), stride):
            window = stretch[first : first + size]
            if len(window) >= 2:
                _scan_window(combiner, texts, window)


def _scan_window(combiner: _Combiner, texts: Sequence[str], window: list[int]) -> None:
    # Join the stripped texts with one space, so digit groups join up as they do in a line.
    bounds: list[tuple[int, int, int, int]] = []  # (segment, joined start, joined end, lead)
    parts: list[str] = []
    pos = 0
    for index in window:
        text = texts[index]
        core = text.strip()
        lead = len(text) - len(text.lstrip())
        bounds.append((index, pos, pos + len(core), lead))
        parts.append(core)
        pos += len(core) + 1
    joined = " ".join(parts)
    for start, end, kind in _scan(joined).spans:
        pieces = [
            (index, max(start, lo) - lo + lead, min(end, hi) - lo + lead)
            for index, lo, hi, lead in bounds
            if start < hi and end > lo
        ]
        pieces = [p for p in pieces if any(ch.isalnum() for ch in texts[p[0]][p[1] : p[2]])]
        if not pieces:
            continue
        if len(pieces) > 1 and not _crossing_is_pii(joined, start, end, kind):
            continue
        combiner.add(kind, pieces, priority=1)


def _crossing_is_pii(joined: str, start: int, end: int, kind: PiiKind) -> bool:
    """Whether a finding spanning segments is PII by itself, not an accident of joining."""
    if kind in (PiiKind.EMAIL, PiiKind.RRN, PiiKind.CARD):
        return True
    if _cue_kind(joined[:start]) is not None:
        return True
    return kind is PiiKind.PHONE and _strong_kind(joined[start:end], allow_local=False) is not None


class _Combiner:
    """Findings from single segments and from windows, merged where they overlap."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.texts = texts
        self.kinds: list[PiiKind] = []
        self.rank: list[tuple[int, int]] = []  # (priority, covered length): the kind to keep
        self.parent: list[int] = []
        self.pieces: list[list[tuple[int, int, int]]] = [[] for _ in texts]  # start, end, id
        self._hints: dict[int, bool] = {}

    def hinted(self, index: int) -> bool:
        """Whether segment ``index`` holds anything a finding could be made of."""
        if index not in self._hints:
            self._hints[index] = _HINT_RE.search(self.texts[index]) is not None
        return self._hints[index]

    def add(self, kind: PiiKind, pieces: list[tuple[int, int, int]], *, priority: int) -> None:
        finding = len(self.kinds)
        self.kinds.append(kind)
        self.rank.append((priority, sum(end - start for _, start, end in pieces)))
        self.parent.append(finding)
        for index, start, end in pieces:
            self.pieces[index].append((start, end, finding))

    def _root(self, finding: int) -> int:
        while self.parent[finding] != finding:
            self.parent[finding] = self.parent[self.parent[finding]]
            finding = self.parent[finding]
        return finding

    def _union(self, a: int, b: int) -> None:
        ra, rb = self._root(a), self._root(b)
        if ra != rb:
            keep, drop = (ra, rb) if self.rank[ra] >= self.rank[rb] else (rb, ra)
            self.parent[drop] = keep

    def results(self) -> list[RedactionResult]:
        # Overlapping pieces within a segment are one finding, whatever found them.
        regions: list[list[tuple[int, int, int]]] = []
        for pieces in self.pieces:
            merged: list[tuple[int, int, int]] = []
            for start, end, finding in sorted(pieces):
                if merged and start < merged[-1][1]:
                    last_start, last_end, last = merged[-1]
                    self._union(last, finding)
                    merged[-1] = (last_start, max(last_end, end), last)
                else:
                    merged.append((start, end, finding))
            regions.append(merged)
        counted: set[int] = set()
        out: list[RedactionResult] = []
        for text, merged in zip(self.texts, regions, strict=True):
            counts: Counter[str] = Counter()
            parts: list[str] = []
            pos = 0
            for start, end, finding in merged:
                root = self._root(finding)
                kind = self.kinds[root]
                parts += [text[pos:start], kind.placeholder]
                pos = end
                if root not in counted:
                    counted.add(root)
                    counts[kind] += 1
            parts.append(text[pos:])
            out.append(RedactionResult(text="".join(parts), counts=_ordered(counts)))
        return out


def _ordered(counts: Counter[str]) -> dict[str, int]:
    # Stable key order (enum order) keeps BI rows and test output deterministic.
    return {kind.value: counts[kind] for kind in PiiKind if counts[kind]}


# --------------------------------------------------------------------------------------
# Passes, with every replacement mapped back to the input
# --------------------------------------------------------------------------------------

# A finding in one pass: (start, end, kind) in that pass's input text.
_Hit = tuple[int, int, PiiKind]


@dataclass
class _Scan:
    """The redacted text, its counts, and the input span each placeholder replaced."""

    text: str
    counts: Counter[str] = field(default_factory=Counter)
    # (start, end in `text`, start, end in the input, kind), in order.
    marks: list[tuple[int, int, int, int, PiiKind]] = field(default_factory=list)

    @property
    def spans(self) -> list[_Hit]:
        return [(o_start, o_end, kind) for _, _, o_start, o_end, kind in self.marks]

    def apply(self, regex: re.Pattern[str], find: Callable[[re.Match[str]], list[_Hit]]) -> None:
        """One ``regex.sub`` pass: each hit becomes its placeholder."""
        hits = [hit for m in regex.finditer(self.text) for hit in find(m)]
        if not hits:
            return
        marks = self.marks
        mark_starts = [mark[0] for mark in marks]

        def to_input(pos: int, *, end: bool) -> int:
            at = pos - 1 if end else pos
            i = bisect_right(mark_starts, at) - 1
            if i < 0:
                return pos
            _, m_end, o_start, o_end, _ = marks[i]
            if at < m_end:  # inside an earlier placeholder: take all of what it replaced
                return o_end if end else o_start
            return o_end + (pos - m_end)

        parts: list[str] = []
        new_marks: list[tuple[int, int, int, int, PiiKind]] = []
        pos = shift = mi = 0
        for start, end, kind in hits:
            while mi < len(marks) and marks[mi][1] <= start:
                m_start, m_end, o_start, o_end, m_kind = marks[mi]
                new_marks.append((m_start + shift, m_end + shift, o_start, o_end, m_kind))
                mi += 1
            while mi < len(marks) and marks[mi][0] < end:
                mi += 1  # swallowed by this hit
            placeholder = kind.placeholder
            new_start = start + shift
            new_marks.append(
                (
                    new_start,
                    new_start + len(placeholder),
                    to_input(start, end=False),
                    to_input(end, end=True),
                    kind,
                )
            )
            parts += [self.text[pos:start], placeholder]
            shift += len(placeholder) - (end - start)
            pos = end
            self.counts[kind] += 1
        new_marks += [(a + shift, b + shift, c, d, k) for a, b, c, d, k in marks[mi:]]
        parts.append(self.text[pos:])
        self.text = "".join(parts)
        self.marks = new_marks


def _scan(text: str) -> _Scan:
    scan = _Scan(text)

    def whole(kind: PiiKind) -> Callable[[re.Match[str]], list[_Hit]]:
        return lambda m: [(m.start(), m.end(), kind)]

    scan.apply(_EMAIL_RE, whole(PiiKind.EMAIL))
    scan.apply(_SPOKEN_EMAIL_RE, whole(PiiKind.EMAIL))
    scan.apply(_CUED_EMAIL_RE, lambda m: [(m.start("address"), m.end(), PiiKind.EMAIL)])
    scan.apply(_LONG_DECIMAL_RE, _long_decimal_hits)
    scan.apply(_DIGIT_RUN_RE, _digit_run_hits)
    scan.apply(_SPOKEN_RUN_RE, _spoken_run_hits)
    # Last sweep: digit groups garbled by speech-to-text right after a contact cue.
    scan.apply(_CUED_DIGITS_RE, _cued_digits_hits)
    return scan


# --------------------------------------------------------------------------------------
# Shared vocabulary
# --------------------------------------------------------------------------------------

_PLACEHOLDER_RE = re.compile(r"\[(?:" + "|".join(k.value for k in PiiKind) + r")\]")

# Only horizontal whitespace: a number must not be glued to one on the next line.
_HSPACE = r"[ \t]"

_UNIT_VALUES: dict[str, int] = {
    "zero": 0,
    "oh": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
}
_TEEN_VALUES: dict[str, int] = {
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS_VALUES: dict[str, int] = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_SCALE_VALUES: dict[str, int] = {"hundred": 100, "thousand": 1_000, "million": 1_000_000}
_WORD_VALUES: dict[str, int] = {**_UNIT_VALUES, **_TEEN_VALUES, **_TENS_VALUES, **_SCALE_VALUES}


def _alt(words: list[str] | dict[str, int]) -> str:
    return "|".join(sorted(words, key=len, reverse=True))


_DIGIT_WORD = _alt(_UNIT_VALUES)
_NONZERO_DIGIT_WORD = _alt([w for w, v in _UNIT_VALUES.items() if v])
# One spoken-number token: "twenty-four", "seventeen", "oh", "hundred", "double five".
_NUM_WORD = (
    rf"(?:{_alt(_TENS_VALUES)})(?:-(?:{_NONZERO_DIGIT_WORD}))?"
    rf"|(?:double|triple){_HSPACE}+(?:{_DIGIT_WORD})"
    rf"|{_alt(_TEEN_VALUES)}|{_DIGIT_WORD}|{_alt(_SCALE_VALUES)}"
)
_NUM_WORD_B = rf"\b(?:{_NUM_WORD})\b"
# Separator between spoken tokens; Whisper often puts commas between dictated digits.
_TOKEN_SEP = rf"(?:{_HSPACE}*[,-]{_HSPACE}*|{_HSPACE}+)(?:and{_HSPACE}+)?"

# A digit run or token is not part of a decimal, a time, a price or a thousands-grouped
# amount: "$49.99", "10:30", "1,000" must never start or end one.
_NUM_START = r"(?<![\d$€£₩¥])(?<!\d[.,:])"
_NUM_END = r"(?!\d)(?![.,:]\d)"

# A number followed by a currency/percent word is an amount, never an identifier.
_AMOUNT_AFTER_RE = re.compile(
    rf"{_HSPACE}*(?:원|달러|퍼센트|%|(?:won|dollars?|bucks|cents?|euros?|pounds?|usd|krw"
    rf"|percent)\b)",
    re.IGNORECASE,
)

# Cue words typing a nearby number. Korean cues are substrings because they are usually
# compounded with particles or other nouns ("계좌번호는", "주민번호").
_CUE_RE = re.compile(
    r"(?P<PHONE>\b(?:tele)?phones?\b|\bmobile\b|\bcell(?:phone)?\b|\bcall(?:s|ed|ing)?\b"
    r"|전화|휴대폰|핸드폰|연락처)"
    r"|(?P<CARD>\bcards?\b|카드)"
    r"|(?P<ACCOUNT>\baccounts?\b|계좌)"
    r"|(?P<RRN>\bresident\b|\bregistration\b|주민)"
    # "number" alone is weak: "account number" / "card number" must not become PHONE.
    r"|(?P<WEAK>\bnumbers?\b|번호)",
    re.IGNORECASE,
)
_CUE_WINDOW_WORDS = 5
_SENTENCE_END_RE = re.compile(r"[.?!。]\s")


def _cue_kind(before: str) -> PiiKind | None:
    """Type a number by the nearest strong cue among the preceding few words.

    Falls back to PHONE for a bare "number"/"번호", else None.
    """
    # A cue belongs to the first number after it: stop at an earlier finding (which also
    # keeps "[PHONE]" from acting as a cue) and at the end of the previous sentence.
    tail = before[-200:]
    for boundary in (_PLACEHOLDER_RE, _SENTENCE_END_RE):
        tail = boundary.split(tail)[-1]
    window = " ".join(tail.split()[-_CUE_WINDOW_WORDS:])
    strong: PiiKind | None = None
    weak = False
    for m in _CUE_RE.finditer(window):
        if m.lastgroup == "WEAK":
            weak = True
        elif m.lastgroup is not None:
            strong = PiiKind(m.lastgroup)  # later match = nearer to the number
    if strong is not None:
        return strong
    return PiiKind.PHONE if weak else None


# Speech-to-text sometimes renders a dictated number as a decimal ("at 0.43218765"). No
# price or measurement carries six or more decimals, so such a token is a dictated number.
_LONG_DECIMAL_RE = re.compile(r"(?<![\d.,])\d{1,4}[.,]\d{6,}(?![\d])")


# Dictated numbers come out of speech-to-text split by stray commas and dots ("reach me at
# 0.04,321"). Right after a contact cue, digits with any separators are one number.
_CUED_DIGITS_RE = re.compile(
    r"(?P<cue>\b(?:reach me (?:at|on)|call me (?:at|on|back on)|phone|number|mobile|cell|"
    r"contact|번호|연락처|전화|휴대폰|카드|계좌)\b[^\d\n\[]{0,25}?)"
    r"(?P<digits>\+?\d[\d.,\s()-]*\d)",
    re.IGNORECASE,
)


def _cued_digits_hits(match: re.Match[str]) -> list[_Hit]:
    digits = re.sub(r"\D", "", match.group("digits"))
    if len(digits) < 5 or _AMOUNT_AFTER_RE.match(match.string, match.end()):
        return []
    kind = _cue_kind(match.string[: match.start("digits")]) or PiiKind.PHONE
    return [(match.start("digits"), match.end("digits"), kind)]


def _long_decimal_hits(match: re.Match[str]) -> list[_Hit]:
    kind = _cue_kind(match.string[: match.start()]) or PiiKind.NUMBER
    return [(match.start(), match.end(), kind)]


# --------------------------------------------------------------------------------------
# Emails
# --------------------------------------------------------------------------------------

# Explicit ASCII classes instead of \w: Korean particles often touch the address
# ("hong@example.co.kr입니다") and Hangul counts as \w.
_EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
    r"\.[A-Za-z]{2,}(?![A-Za-z0-9-])"
)

_TLDS = "com|net|org|edu|gov|mil|info|biz|io|ai|me|co|kr|us|uk|jp|cn|ca|de|fr|au|app|dev"
# What any finding is made of: a digit, a number word, an email's "@" / "at" / "dot", or a
# domain ending (speech-to-text writes "jon at simple dot com" as "jongofimple.com").
_HINT_RE = re.compile(rf"\d|@|\b(?:at|dot|{_NUM_WORD})\b|\.(?:{_TLDS})\b", re.IGNORECASE)
# Words that commonly precede "at" in ordinary speech ("look at", "me at") and so must not
# be taken as a spoken local part.
_AT_STOPWORDS = (
    "look|looking|looked|be|is|am|are|was|were|me|us|him|her|them|it|you|i|we|they|here"
    "|there|that|this|what|where|arrive|arrived|stay|stayed|staying|reach|reached|email|mail"
    "|and|or|at"
)
_SPOKEN_WORD = r"[a-z0-9]+"
# Real dots must be tight ("john.smith"); a spaced "." is a sentence end, not an address.
_LOCAL_SEP = rf"(?:[._-]|{_HSPACE}+(?:dot|underscore|dash|hyphen|period){_HSPACE}+)"
_DOMAIN_SEP = rf"(?:\.|{_HSPACE}+(?:dot|period){_HSPACE}+)"
_SPOKEN_EMAIL_RE = re.compile(
    rf"(?<![A-Za-z0-9._@\[-])(?!(?:{_AT_STOPWORDS})\b)"
    rf"{_SPOKEN_WORD}(?:{_LOCAL_SEP}{_SPOKEN_WORD})*"
    rf"(?:{_HSPACE}+at{_HSPACE}+|{_HSPACE}*@{_HSPACE}*)"
    rf"{_SPOKEN_WORD}(?:{_DOMAIN_SEP}{_SPOKEN_WORD})*{_DOMAIN_SEP}(?:{_TLDS})(?![A-Za-z0-9])",
    re.IGNORECASE,
)


# --------------------------------------------------------------------------------------
# Digit runs: RRN, card, phone, account
# --------------------------------------------------------------------------------------

# Speech-to-text often garbles an address into something like "jongofimple.com" or
# "john and have an ample dot com": after an email cue, anything up to a domain ending goes.
_CUED_EMAIL_RE = re.compile(
    rf"(?P<cue>\b(?:e-?mail|mail|이메일|메일)(?:{_HSPACE}+(?:address|주소))?"
    rf"(?:{_HSPACE}*(?:is|was|:|은|는|이|가)){_HSPACE}*)"
    rf"(?P<address>[^\s\[][^\n\[]{{0,60}}?{_DOMAIN_SEP}(?:{_TLDS})\b(?:{_DOMAIN_SEP}(?:{_TLDS})\b)?)",
    re.IGNORECASE,
)

_GROUP = r"(?:\(\d{1,4}\)|\d+)"
_GROUP_SEP = rf"(?:{_HSPACE}?-{_HSPACE}?|{_HSPACE})"
# A maximal run of digit groups joined by single spaces or hyphens, optionally "+"-prefixed.
_DIGIT_RUN_RE = re.compile(
    rf"{_NUM_START}(?:\+{_HSPACE}?)?{_GROUP}(?:{_GROUP_SEP}{_GROUP})*{_NUM_END}"
)
# The same run split at plain spaces only: hyphenated groups are one deliberate unit.
_UNIT_RE = re.compile(rf"(?:\+{_HSPACE}?)?{_GROUP}(?:{_HSPACE}?-{_HSPACE}?{_GROUP})*")
_SEP_NORM_RE = re.compile(rf"{_HSPACE}*-{_HSPACE}*|{_HSPACE}+")
_NON_DIGIT_RE = re.compile(r"\D")
_DIGITS_RE = re.compile(r"\d+")

_DATE_RE = re.compile(
    r"(?:19|20)\d{2}-(?:0?[1-9]|1[0-2])-(?:0?[1-9]|[12]\d|3[01])"  # 2024-05-01
    r"|(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"  # 20240501
    r"|(?:0?[1-9]|[12]\d|3[01])-(?:0?[1-9]|[12]\d|3[01])-(?:19|20)\d{2}"  # 05-01-2024
    r"|(?:19|20)\d{2}-(?:19|20)\d{2}"  # year range 2023-2024
)
# YYMMDD (plausible month/day) + gender/century digit 1-8 + 6 more digits.
_RRN_RE = re.compile(r"\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])-?[1-8]\d{6}")
# Korean numbers by digits only, since Whisper groups dictated digits arbitrarily:
# mobiles 01x, Seoul 02, other areas/VoIP 0[3-7]x, and 8-digit 15xx-19xx service numbers.
_KR_PHONE_RE = re.compile(r"01[016789]\d{7,8}|02\d{7,8}|0[3-7]\d{8,9}|1[5-9]\d{6}")
_KR_NATIONAL_RE = re.compile(r"01[016789]\d{7,8}|02\d{7,8}|0[3-7]\d{8,9}")
# North American numbers need their visible 3-3-4 shape; a bare 10-digit run stays ACCOUNT.
_NANP_RE = re.compile(r"(?:1-)?(?:\([2-9]\d{2}\)-?|[2-9]\d{2}-)[2-9]\d{2}-\d{4}")
# Local numbers without area code: 555-0100, 555 1234, 2345-6789.
_LOCAL_PHONE_RE = re.compile(r"[2-9]\d{2,3}-\d{4}")
# Card groupings besides "all groups of <= 4": Amex 4-6-5 and Diners 4-6-4.
_CARD_LONG_GROUPS = ([4, 6, 5], [4, 6, 4])


def _normalize(run: str) -> str:
    """Collapse every separator to a single hyphen: "031 123 4567" -> "031-123-4567"."""
    return _SEP_NORM_RE.sub("-", run.strip())


def _digit_count(text: str) -> int:
    return len(_NON_DIGIT_RE.sub("", text))


def _is_date(run: str) -> bool:
    return _DATE_RE.fullmatch(_normalize(run)) is not None


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _is_card(run: str, digits: str) -> bool:
    if not 13 <= len(digits) <= 19:
        return False
    groups = [len(g) for g in _DIGITS_RE.findall(run)]
    # Bank accounts such as 1002-123-456789 have long groups; cards are grouped by <= 4.
    if len(groups) > 1 and max(groups) > 4 and groups not in _CARD_LONG_GROUPS:
        return False
    return _luhn_ok(digits)


def _is_phone(run: str, norm: str, digits: str, *, allow_local: bool) -> bool:
    if run.startswith("+"):
        if digits.startswith("82"):
            national = digits[2:]
            # "+82 10 ..." drops the trunk 0; "+82 010 ..." is a common mistake, accept both.
            if not national.startswith("0"):
                national = "0" + national
            return _KR_NATIONAL_RE.fullmatch(national) is not None
        return 8 <= len(digits) <= 15  # any E.164 number
    if _KR_PHONE_RE.fullmatch(digits) or _NANP_RE.fullmatch(norm):
        return True
    return allow_local and _LOCAL_PHONE_RE.fullmatch(norm) is not None


def _strong_kind(run: str, *, allow_local: bool) -> PiiKind | None:
    """Classify a run that has an unmistakable structure: RRN, card or phone."""
    digits = _NON_DIGIT_RE.sub("", run)
    norm = _normalize(run)
    if not run.startswith("+") and "(" not in run:
        # RRN first: a 13-digit RRN can also pass Luhn or look like a long phone number.
        if _RRN_RE.fullmatch(norm):
            return PiiKind.RRN
        if _is_card(run, digits):
            return PiiKind.CARD
    if _is_phone(run, norm, digits, allow_local=allow_local):
        return PiiKind.PHONE
    return None


def _segment(run: str) -> list[tuple[int, int, PiiKind]] | None:
    """Find strong PII inside a run that space-joins it to a stray number.

    "010-1234-5678 2 times" is one maximal run; the phone should still be typed PHONE.
    Accepted only if every leftover stretch has <= 2 digits, so a long account that
    merely contains a card- or phone-shaped slice is never partly leaked.
    """
    units = list(_UNIT_RE.finditer(run))
    n = len(units)
    if n < 2:
        return None
    found: list[tuple[int, int, PiiKind]] = []
    leftover_digits = 0
    i = 0
    while i < n:
        for j in range(n, i, -1):
            if i == 0 and j == n:
                continue  # the whole run was already tried by the caller
            # Single-digit units are dictated digits, not a grouping worth trusting.
            if j - i > 1 and any(_digit_count(u.group()) < 2 for u in units[i:j]):
                continue
            start, end = units[i].start(), units[j - 1].end()
            span = run[start:end]
            kind = None if _is_date(span) else _strong_kind(span, allow_local=False)
            if kind is not None:
                found.append((start, end, kind))
                leftover_digits = 0
                i = j
                break
        else:
            leftover_digits += _digit_count(units[i].group())
            if leftover_digits > 2:
                return None
            i += 1
    return found or None


_NUM_WORD_BEFORE_RE = re.compile(rf"{_NUM_WORD_B}{_TOKEN_SEP}$", re.IGNORECASE)
_NUM_WORD_AFTER_RE = re.compile(rf"{_TOKEN_SEP}{_NUM_WORD_B}", re.IGNORECASE)


def _next_to_number_word(before: str, after: str) -> bool:
    """True if a spoken number word touches the run ("zero ten 1234 5678")."""
    return bool(_NUM_WORD_BEFORE_RE.search(before[-40:]) or _NUM_WORD_AFTER_RE.match(after))


def _weak_kind(run: str, before: str, after: str) -> PiiKind | None:
    """Classify a run with no telling structure by its length and context."""
    if _AMOUNT_AFTER_RE.match(after):
        return None
    n_digits = _digit_count(run)
    if n_digits >= 8:
        kind = PiiKind.ACCOUNT
    elif n_digits >= 6:
        cue = _cue_kind(before)
        # A lone 6-7 digit group without a cue is most likely an amount ("150000원").
        if cue is None and len(_DIGITS_RE.findall(run)) < 2:
            return None
        kind = cue or PiiKind.NUMBER
    else:
        return None
    if _next_to_number_word(before, after):
        return None  # part of a spoken run; the spoken pass redacts the whole of it
    return kind


def _digit_run_hits(m: re.Match[str]) -> list[_Hit]:
    run = m.group()
    if _is_date(run):
        return []
    kind = _strong_kind(run, allow_local=True)
    if kind is not None:
        return [(m.start(), m.end(), kind)]
    segments = _segment(run)
    if segments is not None:
        return [(m.start() + start, m.start() + end, kind) for start, end, kind in segments]
    kind = _weak_kind(run, m.string[: m.start()], m.string[m.end() :])
    return [] if kind is None else [(m.start(), m.end(), kind)]


# --------------------------------------------------------------------------------------
# Spoken number runs
# --------------------------------------------------------------------------------------

_DIGIT_TOKEN = rf"{_NUM_START}\d+{_NUM_END}"
_TOKEN_RE = re.compile(rf"{_NUM_WORD_B}|{_DIGIT_TOKEN}", re.IGNORECASE)
_SPOKEN_RUN_RE = re.compile(
    rf"(?:{_NUM_WORD_B}|{_DIGIT_TOKEN})(?:{_TOKEN_SEP}(?:{_NUM_WORD_B}|{_DIGIT_TOKEN}))*",
    re.IGNORECASE,
)
_MIN_SPOKEN_TOKENS = 6
_MIN_SPOKEN_DIGITS = 6


def _spoken_chunks(tokens: list[str]) -> list[str]:
    """Render spoken tokens as the digit chunks a listener would write down.

    "zero ten one thousand two hundred thirty four" -> ["0", "10", "1234"]. A new chunk
    starts whenever a word cannot extend the current number ("one two" is 1, 2; "thirty
    four" is 34), which is how people dictate phone and account numbers.
    """
    chunks: list[str] = []
    total = sub = 0
    active = False
    last = ""  # kind of the previous word: unit / teen / tens / hundred / scale

    def flush() -> None:
        nonlocal total, sub, active, last
        if active:
            chunks.append(str(total + sub))
        total = sub = 0
        active = False
        last = ""

    def start(value: int, kind: str, *, as_total: bool = False) -> None:
        nonlocal total, sub, active, last
        flush()
        active = True
        total, sub = (value, 0) if as_total else (0, value)
        last = kind

    for token in tokens:
        low = token.lower()
        if low[0].isdigit():
            flush()
            chunks.append(low)  # keep leading zeros: "010" is three digits
            continue
        parts = low.split()
        if parts[0] in ("double", "triple"):
            flush()
            chunks.append(str(_UNIT_VALUES[parts[-1]]) * (2 if parts[0] == "double" else 3))
            continue
        for word in low.split("-"):
            value = _WORD_VALUES[word]
            if word in ("zero", "oh"):
                flush()
                chunks.append("0")
            elif value < 10:
                if active and last in ("tens", "hundred", "scale"):
                    sub += value
                    last = "unit"
                else:
                    start(value, "unit")
            elif value < 100:
                kind = "teen" if value < 20 else "tens"
                if active and last in ("hundred", "scale"):
                    sub += value
                    last = kind
                else:
                    start(value, kind)
            elif value == 100:
                if active and last in ("unit", "teen", "tens") and 0 < sub < 100:
                    sub *= 100
                    last = "hundred"
                else:
                    start(100, "hundred")
            elif active and last != "scale" and 0 < sub < 1000:
                if total % (value * 1000) == 0:
                    total += sub * value  # "two million three thousand"
                else:
                    chunks.append(str(total))  # "five thousand six thousand"
                    total = sub * value
                sub = 0
                last = "scale"
            else:
                start(value, "scale", as_total=True)
    flush()
    return chunks


def _spoken_run_hits(m: re.Match[str]) -> list[_Hit]:
    run = m.group()
    tokens = [t.group() for t in _TOKEN_RE.finditer(run)]
    # Pure digit runs were already judged by the digit pass; leave its decision alone.
    if all(t[0].isdigit() for t in tokens):
        return []
    chunks = _spoken_chunks(tokens)
    n_digits = sum(len(c) for c in chunks)
    # A single chunk is one quantity ("one hundred thousand"), not a dictated identifier.
    long_enough = len(tokens) >= _MIN_SPOKEN_TOKENS or (
        len(chunks) >= 2 and n_digits >= _MIN_SPOKEN_DIGITS
    )
    if not long_enough or _AMOUNT_AFTER_RE.match(m.string, m.end()):
        return []
    kind = _cue_kind(m.string[: m.start()]) or PiiKind.NUMBER
    return [(m.start(), m.end(), kind)]
