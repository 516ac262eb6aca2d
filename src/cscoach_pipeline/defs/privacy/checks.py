"""The check that redaction left no PII: the redacted transcript is scanned again, by the
project's own rules (redacting it again must change nothing) and by independent detectors
(libphonenumber for phone numbers in any national or international format, an e-mail
pattern, a resident-registration-number pattern), so a gap in the rules shows as a failed
check on the consultation instead of passing silently."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import phonenumbers

from cscoach_pipeline.defs.checks import CheckOutcome
from cscoach_pipeline.defs.privacy.pii import redact

NO_PII_LEFT = "no_pii_left"
# The regions whose numbering plans the phone detector knows numbers without a country code
# by: the centres this project serves (Korea, then the English-speaking ones).
PHONE_REGIONS = ("KR", "US", "GB")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_RRN = re.compile(r"(?<!\d)\d{6}\s?-\s?[1-8]\d{6}(?!\d)")


def residual_pii(texts: Sequence[str]) -> Counter[str]:
    """Findings per kind in text that should hold none (counts only: never the text)."""
    found: Counter[str] = Counter()
    for text in texts:
        found.update({f"rules_{kind.lower()}": n for kind, n in redact(text).counts.items()})
        spans: set[tuple[int, int]] = set()
        for region in PHONE_REGIONS:
            for match in phonenumbers.PhoneNumberMatcher(
                text, region, leniency=phonenumbers.Leniency.VALID
            ):
                spans.add((match.start, match.end))
        found["phone"] += len(spans)
        found["email"] += len(_EMAIL.findall(text))
        found["rrn"] += len(_RRN.findall(text))
    return +found  # zero counts dropped


def no_pii_left(texts: Sequence[str]) -> CheckOutcome:
    found = residual_pii(texts)
    total = sum(found.values())
    if total == 0:
        return CheckOutcome(
            NO_PII_LEFT, True, "the redacted transcript holds no detectable PII",
            {"segments_scanned": len(texts)},
        )  # fmt: skip
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(found.items()))
    return CheckOutcome(
        NO_PII_LEFT,
        False,
        f"possible PII left after redaction ({kinds}): the transcript row and anything "
        "built from it may expose it; review the redaction rules",
        {"segments_scanned": len(texts), "findings": total, **dict(found)},
        error=True,
    )
