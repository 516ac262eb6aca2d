"""Day partitions of the supervisor aggregates: the consultation's day (recorded_at, else its
upload) in the centre's timezone."""

from __future__ import annotations

from datetime import date, timedelta

from dagster import DailyPartitionsDefinition, WeeklyPartitionsDefinition

DAY_FORMAT = "%Y-%m-%d"


def consultation_days(start: date, timezone: str) -> DailyPartitionsDefinition:
    # end_offset=1: today's partition exists while the day is still going.
    return DailyPartitionsDefinition(
        start_date=start.strftime(DAY_FORMAT), timezone=timezone, end_offset=1, fmt=DAY_FORMAT
    )


def report_days(start: date, timezone: str) -> DailyPartitionsDefinition:
    """Days that are over: a day's report is written once the day has ended."""
    return DailyPartitionsDefinition(
        start_date=start.strftime(DAY_FORMAT), timezone=timezone, fmt=DAY_FORMAT
    )


def report_weeks(start: date, timezone: str) -> WeeklyPartitionsDefinition:
    """Weeks that are over, Monday to Sunday, keyed by their Monday."""
    monday = start - timedelta(days=start.weekday())
    return WeeklyPartitionsDefinition(
        start_date=monday.strftime(DAY_FORMAT), timezone=timezone, day_offset=1, fmt=DAY_FORMAT
    )
