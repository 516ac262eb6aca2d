"""Times written in text consultations: clock readings ("10:32:05", "01:02.5", "10:32 PM"),
dates, and wall-clock times turned into seconds from the first message."""

from __future__ import annotations

import re
from datetime import UTC, datetime

# Regex fragments for the parsers that find times inside lines.
CLOCK = r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,3})?"
DATE = r"\d{4}[-./]\d{1,2}[-./]\d{1,2}"

_CLOCK_RE = re.compile(
    r"^(?:(?P<h>\d+):)?(?P<m>\d{1,2}):(?P<s>\d{2})(?:[.,](?P<f>\d{1,3}))?\s*(?P<ampm>[AaPp][Mm])?$"
)


def clock_seconds(value: str) -> float | None:
    """Seconds for "HH:MM:SS(.mmm)" / "MM:SS(.mmm)"; "HH:MM AM" is read as a wall-clock time."""
    m = _CLOCK_RE.match(value.strip())
    if not m:
        return None
    h, mi, s = int(m["h"] or 0), int(m["m"]), int(m["s"])
    frac = float(f"0.{m['f']}") if m["f"] else 0.0
    if m["ampm"]:
        if m["h"] is None:  # "10:32 PM" is hours and minutes, not minutes and seconds
            h, mi, s = mi, s, 0
        h = h % 12 + (12 if m["ampm"].lower() == "pm" else 0)
    return h * 3600 + mi * 60 + s + frac


def date_seconds(date: str) -> float:
    y, mo, d = (int(p) for p in re.split(r"[-./]", date))
    try:
        return datetime(y, mo, d, tzinfo=UTC).timestamp()
    except ValueError:
        return 0.0


def rebase_wall_clock(times: list[float | None], absolute: bool) -> list[float | None]:
    """Turn wall-clock or dated times into seconds from the first one.

    Offsets under an hour ("00:01:23") are already relative to the recording and stay as they
    are; dated or later-in-the-day times ("10:32:05") are clock readings. Passing midnight is
    undone so a chat at 23:59 -> 00:01 stays increasing.
    """
    known = [t for t in times if t is not None]
    if not known or (not absolute and known[0] < 3600):
        return times
    origin = known[0]
    out: list[float | None] = []
    prev = origin
    day = 0.0
    for t in times:
        if t is None:
            out.append(None)
            continue
        if not absolute and t + day < prev - 12 * 3600:
            day += 86400
        value = t + day
        prev = value
        out.append(value - origin)
    return out
