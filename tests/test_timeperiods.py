"""Time periods as Nagios evaluates them: weekdays, exceptions, excludes, next_active."""

from __future__ import annotations

import datetime
import os
import time
import zoneinfo
from collections.abc import Iterator
from pathlib import Path

import pytest

from checkd.config import load_objects
from checkd.config.model import TimePeriod
from checkd.timeperiods import is_active, next_active, next_valid_time
from tests.test_config import assert_error, check_config, write_tree

CET = datetime.timezone(datetime.timedelta(hours=1), "CET")

PERIODS = """
timeperiods:
  - name: workhours
    monday: "09:00-17:00"
    tuesday: "09:00-17:00"
    wednesday: "09:00-17:00"
    thursday: "09:00-17:00"
    friday: "09:00-17:00"
  - name: december
    monday: "09:00-17:00"
    tuesday: "09:00-17:00"
    wednesday: "09:00-17:00"
    thursday: "09:00-17:00"
    friday: "09:00-17:00"
    exceptions:
      "2026-12-24": ""                        # Thursday off
      "2026-12-23": "08:00-20:00"             # Wednesday, longer
      "2026-12-28 - 2026-12-30": "10:00-12:00"
      "2026-12-29": ""                        # a single day beats the range around it
      december 31: "09:00-12:00"              # every year
  - name: holidays
    exceptions:
      "2026-12-25": "00:00-24:00"
      january 1: "00:00-24:00"
  - name: office
    monday: "09:00-17:00"
    tuesday: "09:00-17:00"
    wednesday: "09:00-17:00"
    thursday: "09:00-17:00"
    friday: "09:00-17:00"
    exclude: [holidays]
  - name: support                             # weekdays 08-18 when the office is not open
    monday: "08:00-18:00"
    tuesday: "08:00-18:00"
    wednesday: "08:00-18:00"
    thursday: "08:00-18:00"
    friday: "08:00-18:00"
    exclude: office
  - name: night
    monday: "22:00-24:00"
    tuesday: "00:00-06:00"
  - name: late
    monday: "22:00-24:00"
  - name: never
"""


@pytest.fixture(scope="module")
def periods(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TimePeriod]:
    directory = tmp_path_factory.mktemp("objects")
    (directory / "periods.yaml").write_text(PERIODS)
    return dict(load_objects(directory).timeperiods)


def at(day: str, hhmm: str = "00:00", second: int = 0) -> datetime.datetime:
    return datetime.datetime.fromisoformat(f"{day}T{hhmm}:{second:02d}").replace(tzinfo=CET)


def test_workhours_on_a_weekday_and_the_weekend(periods: dict[str, TimePeriod]) -> None:
    assert is_active("workhours", at("2026-12-01", "10:00"), periods)        # Tuesday
    assert is_active("workhours", at("2026-12-01", "09:00"), periods)
    assert not is_active("workhours", at("2026-12-01", "08:59", 59), periods)
    assert is_active("workhours", at("2026-12-01", "16:59", 59), periods)
    assert not is_active("workhours", at("2026-12-01", "17:00"), periods)     # ranges end before their end
    assert not is_active("workhours", at("2026-12-05", "10:00"), periods)     # Saturday


def test_a_holiday_exception_switches_a_working_day_off(periods: dict[str, TimePeriod]) -> None:
    assert not is_active("december", at("2026-12-24", "10:00"), periods)
    assert is_active("december", at("2026-12-22", "10:00"), periods)


def test_a_one_day_exception_extends_the_hours(periods: dict[str, TimePeriod]) -> None:
    assert is_active("december", at("2026-12-23", "08:30"), periods)
    assert is_active("december", at("2026-12-23", "19:30"), periods)
    assert not is_active("december", at("2026-12-23", "20:00"), periods)


def test_a_date_range_exception_covers_each_day_and_yields_to_a_single_date(periods: dict[str, TimePeriod]) -> None:
    assert periods["december"].date_ranges == (("2026-12-28", "2026-12-30", ((600, 720),)),)
    assert is_active("december", at("2026-12-28", "11:00"), periods)
    assert not is_active("december", at("2026-12-28", "13:00"), periods)     # weekday hours replaced
    assert is_active("december", at("2026-12-30", "11:59"), periods)          # the last day is included
    assert not is_active("december", at("2026-12-29", "11:00"), periods)
    assert is_active("december", at("2027-01-04", "13:00"), periods)          # back to weekdays after


def test_a_yearly_exception_applies_every_year(periods: dict[str, TimePeriod]) -> None:
    assert periods["december"].yearly == {(12, 31): ((540, 720),)}
    for year in (2026, 2027):
        assert is_active("december", at(f"{year}-12-31", "11:00"), periods)
        assert not is_active("december", at(f"{year}-12-31", "13:00"), periods)


def test_exclude_of_a_holiday_period(periods: dict[str, TimePeriod]) -> None:
    assert is_active("office", at("2026-12-24", "10:00"), periods)
    assert not is_active("office", at("2026-12-25", "10:00"), periods)       # a date
    assert not is_active("office", at("2027-01-01", "10:00"), periods)       # a yearly day


def test_excludes_nest(periods: dict[str, TimePeriod]) -> None:
    # support excludes office, which excludes holidays: on a holiday support has the whole day.
    assert not is_active("support", at("2026-12-24", "10:00"), periods)
    assert is_active("support", at("2026-12-24", "08:30"), periods)
    assert is_active("support", at("2026-12-24", "17:30"), periods)
    assert is_active("support", at("2026-12-25", "10:00"), periods)


def test_next_active_across_a_weekend(periods: dict[str, TimePeriod]) -> None:
    found = next_active("office", at("2026-12-04", "17:00"), periods)          # Friday evening
    assert found == at("2026-12-07", "09:00") and found.tzinfo is CET


def test_next_active_across_a_holiday(periods: dict[str, TimePeriod]) -> None:
    assert next_active("office", at("2026-12-24", "17:30"), periods) == at("2026-12-28", "09:00")
    assert next_active("office", at("2026-12-31", "18:00"), periods) == at("2027-01-04", "09:00")


def test_next_active_is_now_when_already_active(periods: dict[str, TimePeriod]) -> None:
    now = at("2026-12-01", "10:15", 7)
    assert next_active("office", now, periods) == now
    assert next_active("office", at("2026-12-01", "07:00"), periods) == at("2026-12-01", "09:00")


def test_next_active_of_a_period_that_never_is(periods: dict[str, TimePeriod]) -> None:
    assert next_active("never", at("2026-12-01"), periods) is None
    assert not is_active("never", at("2026-12-01", "12:00"), periods)


def test_midnight_boundaries(periods: dict[str, TimePeriod]) -> None:
    assert is_active("night", at("2026-12-07", "23:59", 59), periods)         # Monday
    assert is_active("night", at("2026-12-08", "00:00"), periods)             # Tuesday
    assert not is_active("night", at("2026-12-08", "06:00"), periods)
    assert next_active("night", at("2026-12-07", "23:59", 59), periods) == at("2026-12-07", "23:59", 59)
    assert next_active("night", at("2026-12-07", "21:00"), periods) == at("2026-12-07", "22:00")
    assert is_active("late", at("2026-12-07", "23:59", 59), periods)
    assert not is_active("late", at("2026-12-08", "00:00"), periods)
    assert next_active("late", at("2026-12-08", "00:00"), periods) == at("2026-12-14", "22:00")


def test_no_period_means_always_and_an_unknown_one_is_an_error(periods: dict[str, TimePeriod]) -> None:
    when = at("2026-12-05", "03:00")
    assert is_active(None, when, periods) and next_active(None, when, periods) == when
    with pytest.raises(KeyError, match="undefined timeperiod 'offfice'"):
        is_active("offfice", when, periods)
    with pytest.raises(ValueError, match="time zone aware"):
        is_active("office", when.replace(tzinfo=None), periods)


def test_next_valid_time_on_the_epoch_clock(periods: dict[str, TimePeriod]) -> None:
    """The scheduler's arithmetic (Nagios' get_next_valid_time): a time inside the period is
    kept to the microsecond, one outside moves to where the period next opens."""
    inside = at("2026-12-01", "10:15", 7).timestamp() + 0.123456
    assert next_valid_time("office", inside, periods, CET) == inside
    assert next_valid_time(None, inside, periods, CET) == inside
    friday_evening = at("2026-12-04", "17:00").timestamp()
    assert next_valid_time("office", friday_evening, periods, CET) == at("2026-12-07", "09:00").timestamp()
    assert next_valid_time("office", at("2026-12-24", "17:30").timestamp(), periods, CET) \
        == at("2026-12-28", "09:00").timestamp()
    assert next_valid_time("never", inside, periods, CET) is None


@pytest.fixture
def berlin() -> Iterator[None]:
    """The process's local time zone is Europe/Berlin (the scheduler uses the local zone)."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Berlin"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def test_next_valid_time_across_a_daylight_saving_change(periods: dict[str, TimePeriod], berlin: None) -> None:
    """Saturday 28 March 2026 is CET (+1); on Monday 30 March Berlin is on CEST (+2). The
    workhours start at 09:00 local, 07:00 UTC, not at 09:00 of Saturday's offset (08:00 UTC)."""
    tz = zoneinfo.ZoneInfo("Europe/Berlin")
    saturday = datetime.datetime(2026, 3, 28, 18, 0, tzinfo=tz).timestamp()
    monday_9 = datetime.datetime(2026, 3, 30, 7, 0, tzinfo=datetime.timezone.utc).timestamp()
    assert next_valid_time("workhours", saturday, periods) == monday_9     # the local zone, as the scheduler
    assert next_valid_time("workhours", saturday, periods, tz) == monday_9


def test_a_cycle_in_exclude_is_a_config_error(tmp_path: Path) -> None:
    assert_error(tmp_path, {"p.yaml": """
timeperiods:
  - {name: a, monday: "09:00-17:00", exclude: b}
  - {name: b, exclude: [c]}
  - {name: c, exclude: [a]}
"""}, "p.yaml", 5, "cycle in exclude: a -> b -> c -> a")


@pytest.mark.parametrize("key, line_words", [
    ('"2026-02-30"', "no such date '2026-02-30'"),
    ('"2026-12-31 - 2026-12-01"', "ends before it starts"),
    ("decembre 25", "unknown month 'decembre'"),
    ("february 30", "february has no day 30"),
    ("christmas", "bad exception day 'christmas'"),
    ("2026-12-25", 'quote it: "2026-12-25"'),
])
def test_bad_exception_days(tmp_path: Path, key: str, line_words: str) -> None:
    assert_error(tmp_path, {"p.yaml": f"""
timeperiods:
  - name: t
    exceptions:
      {key}: "00:00-24:00"
"""}, "p.yaml", 5, line_words)


def test_the_same_day_twice_is_an_error(tmp_path: Path) -> None:
    assert_error(tmp_path, {"p.yaml": """
timeperiods:
  - name: t
    exceptions:
      December 25: ""
      december 25: "09:00-10:00"
"""}, "p.yaml", 6, "given twice (first at line 5)")


def test_exceptions_check_config_accepts_every_form(tmp_path: Path) -> None:
    result = check_config(write_tree(tmp_path, {"p.yaml": PERIODS}))
    assert result.returncode == 0, result.stderr
