"""The check that redaction left no PII: the redacted transcript is scanned again, by the
project's own rules (redacting it again must change nothing) and by independent detectors
(libphonenumber for phone numbers in any national or international format, an e-mail
pattern, a resident-registration-number pattern), so a gap in the rules shows as a failed
check on the consultation instead of passing silently."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise

import phonenumbers

from cscoach_pipeline.defs.checks import CheckOutcome
from cscoach_pipeline.defs.privacy.pii import redact
from cscoach_pipeline.defs.speech.transcript import Segment

NO_PII_LEFT = "no_pii_left"
# The regions whose numbering plans the phone detector knows numbers without a country code
# by: the centres this project serves (Korea, then the English-speaking ones).
PHONE_REGIONS = ("KR", "US", "GB")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_RRN = re.compile(r"(?<!\d)\d{6}\s?-\s?[1-8]\d{6}(?!\d)")


def _phones(text: str) -> set[tuple[int, int]]:
    spans: set[tuple[int, int]] = set()
    for region in PHONE_REGIONS:
        for match in phonenumbers.PhoneNumberMatcher(
            text, region, leniency=phonenumbers.Leniency.VALID
        ):
            spans.add((match.start, match.end))
    return spans


def residual_pii(texts: Sequence[str]) -> Counter[str]:
    """Findings per kind in text that should hold none (counts only: never the text)."""
    found: Counter[str] = Counter()
    for text in texts:
        found.update({f"rules_{kind.lower()}": n for kind, n in redact(text).counts.items()})
        found["phone"] += len(_phones(text))
        found["email"] += len(_EMAIL.findall(text))
        found["rrn"] += len(_RRN.findall(text))
    return +found  # zero counts dropped


def _split_phones(segments: Sequence[Segment]) -> int:
    """Phone numbers dictated across two consecutive segments of one speaker (the case the
    redaction joins turns for), found in neither segment alone."""
    count = 0
    for first, second in pairwise(segments):
        if first.speaker != second.speaker:
            continue
        joined = f"{first.text} {second.text}"
        cut = len(first.text)
        count += sum(1 for start, end in _phones(joined) if start < cut < end)
    return count


def no_pii_left(segments: Sequence[Segment]) -> CheckOutcome:
    found = residual_pii([s.text for s in segments])
    if split := _split_phones(segments):
        found["phone_across_segments"] += split
    total = sum(found.values())
    if total == 0:
        return CheckOutcome(
            NO_PII_LEFT, True, "the redacted transcript holds no detectable PII",
            {"segments_scanned": len(segments)},
        )  # fmt: skip
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(found.items()))
    return CheckOutcome(
        NO_PII_LEFT,
        False,
        f"possible PII left after redaction ({kinds}): the transcript row and anything "
        "built from it may expose it; review the redaction rules",
        {"segments_scanned": len(segments), "findings": total, **dict(found)},
        error=True,
    )
