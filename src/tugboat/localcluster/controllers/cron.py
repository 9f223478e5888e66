"""Cron schedules as CronJobs spell them: parsing, and the times they fire.

Upstream parses ``spec.schedule`` with robfig/cron's standard parser: five fields (minute, hour, day of
month, month, day of week) with ``*``/``?``, ranges, steps, lists and month/day names, or a descriptor
(``@hourly``, ``@daily``/``@midnight``, ``@weekly``, ``@monthly``, ``@yearly``/``@annually``). When both
day fields are restricted a day matches if either does (classic cron); when one of them is ``*`` both must.
Times are evaluated in ``spec.timeZone`` (an IANA name, via :mod:`zoneinfo`), UTC by default.

Everything here is pure and takes the time as an argument, so the CronJob controller's decisions can be
tested with any clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["CronError", "Schedule", "parse", "zone"]

_SEARCH_DAYS = 5 * 366  # robfig gives up after five years without a match

DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
_WEEKDAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}


class CronError(ValueError):
    """A schedule or time zone that cannot be parsed."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int] | None = None


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, _MONTHS),
    _Field("day of week", 0, 6, _WEEKDAYS),
)


def zone(name: str | None) -> tzinfo:
    """The time zone named by ``spec.timeZone`` (UTC when unset)."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CronError(f"unknown time zone {name}") from exc


def _value(text: str, spec: _Field) -> int:
    if spec.names and text.lower() in spec.names:
        return spec.names[text.lower()]
    if not text.isdigit():
        raise CronError(f"failed to parse int from {text}: invalid {spec.name}")
    return int(text)


def _parse_part(part: str, spec: _Field) -> tuple[set[int], bool]:
    """One comma-separated item: the values it selects and whether it was a bare ``*``."""
    range_text, slash, step_text = part.partition("/")
    if slash and not step_text.isdigit():
        raise CronError(f"failed to parse int from {step_text}: invalid step in {part}")
    step = int(step_text) if slash else 1
    star = range_text in ("*", "?")
    if star:
        low, high = spec.low, spec.high
    else:
        first, dash, last = range_text.partition("-")
        low = _value(first, spec)
        high = _value(last, spec) if dash else (spec.high if slash else low)
    if low < spec.low or high > spec.high:
        raise CronError(f"end of range ({high}) above maximum ({spec.high}): {part}")
    if low > high:
        raise CronError(f"beginning of range ({low}) beyond end of range ({high}): {part}")
    if step <= 0:
        raise CronError(f"step of range should be a positive number: {part}")
    return set(range(low, high + 1, step)), star and step == 1


def _parse_field(text: str, spec: _Field) -> tuple[frozenset[int], bool]:
    values: set[int] = set()
    star = False
    for part in text.split(","):
        if not part:
            raise CronError(f"empty item in {spec.name} field: {text!r}")
        selected, is_star = _parse_part(part, spec)
        values |= selected
        star = star or is_star
    return frozenset(values), star


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule in one time zone."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_star: bool
    weekdays_star: bool
    tz: tzinfo = UTC

    def day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.days_star or self.weekdays_star:
            return dom and dow
        return dom or dow

    def _at(self, day: date, hour: int, minute: int) -> datetime | None:
        """The instant of a local wall-clock time (None inside a daylight-saving gap)."""
        local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=self.tz)
        instant = local.astimezone(UTC)
        back = instant.astimezone(self.tz)
        if (back.hour, back.minute, back.date()) != (hour, minute, day):
            return None
        return instant

    def next_after(self, moment: datetime) -> datetime | None:
        """The first firing strictly after ``moment`` (an aware datetime), in UTC."""
        local = moment.astimezone(self.tz)
        start = local.date()
        for offset in range(_SEARCH_DAYS):
            day = start + timedelta(days=offset)
            if not self.day_matches(day):
                continue
            for hour in sorted(self.hours):
                if offset == 0 and hour < local.hour:
                    continue
                for minute in sorted(self.minutes):
                    instant = self._at(day, hour, minute)
                    if instant is not None and instant > moment:
                        return instant
        return None

    def last_at_or_before(self, moment: datetime) -> datetime | None:
        """The latest firing at or before ``moment``, in UTC."""
        local = moment.astimezone(self.tz)
        start = local.date()
        for offset in range(_SEARCH_DAYS):
            day = start - timedelta(days=offset)
            if not self.day_matches(day):
                continue
            for hour in sorted(self.hours, reverse=True):
                if offset == 0 and hour > local.hour:
                    continue
                for minute in sorted(self.minutes, reverse=True):
                    instant = self._at(day, hour, minute)
                    if instant is not None and instant <= moment:
                        return instant
        return None

    def count_between(self, after: datetime, until: datetime, *, limit: int) -> int:
        """How many firings fall in ``(after, until]``, counting no further than ``limit``."""
        count = 0
        cursor = after
        while count < limit:
            following = self.next_after(cursor)
            if following is None or following > until:
                break
            count += 1
            cursor = following
        return count


_TZ_PREFIX = re.compile(r"^(?:CRON_TZ|TZ)=(\S+)\s+(.*)$")


def parse(text: str, *, time_zone: str | None = None) -> Schedule:
    """Parse a CronJob schedule (``TZ=``/``CRON_TZ=`` prefixes are honoured when no time zone is given)."""
    spec = text.strip()
    prefixed = _TZ_PREFIX.match(spec)
    if prefixed:
        time_zone = time_zone or prefixed.group(1)
        spec = prefixed.group(2).strip()
    tz = zone(time_zone)
    if spec.startswith("@"):
        if spec.lower() not in DESCRIPTORS:
            raise CronError(f"unrecognized descriptor: {spec}")
        spec = DESCRIPTORS[spec.lower()]
    fields = spec.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    parsed = [_parse_field(item, field) for item, field in zip(fields, _FIELDS, strict=True)]
    return Schedule(
        minutes=parsed[0][0],
        hours=parsed[1][0],
        days=parsed[2][0],
        months=parsed[3][0],
        weekdays=parsed[4][0],
        days_star=parsed[2][1],
        weekdays_star=parsed[4][1],
        tz=tz,
    )
