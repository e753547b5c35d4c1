"""``llm_oracle.schedule``: the HH:MM parser and the half-open session slot."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone

import pytest
from fake_openai import AT, make_oracle

from llm_oracle import store
from llm_oracle.daemon import due_slot, next_slot
from llm_oracle.schedule import Schedule, Slot, parse_hhmm
from llm_oracle.settings import OracleSettings, OracleSettingsError, load_oracle_settings

SESSIONS = ["00:00", "06:00", "12:00", "18:00"]
US = timedelta(microseconds=1)


def utc(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2025, 6, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("00:00", time(0, 0)), ("06:00", time(6, 0)), ("23:59", time(23, 59)),
    ("6:05", time(6, 5)),  # one-digit hours were always accepted
])
def test_parse_hhmm_reads_utc_times(text, expected):
    assert parse_hhmm(text) == expected


@pytest.mark.parametrize("text", ["24:00", "12:60", "12", "12:", ":30", "", "ab:cd", "-1:00",
                                  " 6:00", "6:00 ", "06:00:00", "06.00", "²:00"])
def test_parse_hhmm_names_the_bad_value(text):
    with pytest.raises(ValueError) as err:
        parse_hhmm(text)
    assert str(err.value) == f"{text!r} is not HH:MM (UTC)"


def test_the_session_setting_keeps_its_message():
    with pytest.raises(OracleSettingsError, match=r"llm_oracle\.sessions: Value error, "
                                                  r"session time '25:00' is not HH:MM \(UTC\)"):
        load_oracle_settings({"llm_oracle": {"sessions": ["06:00", "25:00"]}})
    assert OracleSettings(sessions=["18:00", "06:00"]).sessions == ["06:00", "18:00"]


def test_a_time_exactly_at_a_session_start_is_in_the_slot_that_starts_then():
    schedule = Schedule(SESSIONS)
    assert schedule.slot(utc(1, 6)) == Slot(utc(1, 6), utc(1, 12), "06:00")
    assert schedule.slot(utc(1, 6) - US) == Slot(utc(1, 0), utc(1, 6), "00:00")
    assert schedule.slot(utc(1, 12) - US).end == utc(1, 12)  # the end is not in the slot
    assert utc(1, 6) in schedule.slot(utc(1, 6)) and utc(1, 12) not in schedule.slot(utc(1, 6))


def test_the_last_slot_of_a_day_runs_to_the_first_session_of_the_next():
    schedule = Schedule(["07:30", "19:00"])
    assert schedule.slot(utc(1, 3)) == Slot(utc(1, 19) - timedelta(days=1), utc(1, 7, 30),
                                            "19:00")
    assert schedule.slot(utc(1, 23, 59)) == Slot(utc(1, 19), utc(2, 7, 30), "19:00")
    assert Schedule(["12:00"]).slot(utc(1, 12)) == Slot(utc(1, 12), utc(2, 12), "12:00")


def test_slots_are_in_time_order_once_each_and_named_as_configured():
    schedule = Schedule(["18:00", "6:00", "06:00"])
    assert schedule.times == [time(6), time(18)]
    assert [s.name for s in schedule.slots(utc(1, 0), utc(2, 0))] == ["6:00Z", "18:00Z"]


def test_slots_in_a_range_are_half_open():
    schedule = Schedule(SESSIONS)
    starts = [s.start for s in schedule.slots(utc(1, 6), utc(2, 6))]
    assert starts == [utc(1, 6), utc(1, 12), utc(1, 18), utc(2, 0)]  # 06:00 in, next 06:00 out
    assert [s.start for s in schedule.slots(utc(1, 6) + US, utc(1, 12) + US)] == [utc(1, 12)]
    assert list(schedule.slots(utc(1, 7), utc(1, 7))) == []
    assert list(Schedule([]).slots(utc(1, 0), utc(9, 0))) == []


def test_slots_need_an_aware_time_and_convert_it_to_utc():
    schedule = Schedule(SESSIONS)
    with pytest.raises(TypeError):
        schedule.slot(datetime(2025, 6, 1, 6))
    paris = timezone(timedelta(hours=2))
    assert schedule.slot(datetime(2025, 6, 1, 8, tzinfo=paris)).start == utc(1, 6)
    with pytest.raises(ValueError):
        Schedule([]).slot(utc(1, 6))


def test_the_daemon_runs_a_slot_at_its_exact_start_and_waits_for_the_next_start():
    done = utc(1, 0)
    assert due_slot(SESSIONS, done, utc(1, 6) - US) is None
    assert due_slot(SESSIONS, done, utc(1, 6)) == utc(1, 6)  # due at 06:00:00 itself
    assert due_slot(SESSIONS, utc(1, 6), utc(1, 6)) is None  # ran: not again
    assert due_slot(SESSIONS, utc(1, 6) - US, utc(1, 6)) == utc(1, 6)
    assert next_slot(SESSIONS, utc(1, 6) - US) == utc(1, 6)
    assert next_slot(SESSIONS, utc(1, 6)) == utc(1, 12)  # strictly after
    assert next_slot(SESSIONS, utc(1, 18, 30)) == utc(2, 0)
    # A late start (last_done is when it ran) does not make the slot due twice.
    assert due_slot(SESSIONS, utc(1, 6, 7), utc(1, 11, 59)) is None
    assert due_slot(SESSIONS, utc(1, 6, 7), utc(1, 12)) == utc(1, 12)
    # Down for days: the newest slot only.
    assert due_slot(SESSIONS, done, utc(4, 13)) == utc(4, 12)


def test_consecutive_backfills_decide_the_session_at_their_seam_once(market, tmp_path):
    """The backfill's range is half-open: the 00:00 session at the end of one timerange
    belongs to the next, so back-to-back backfills journal it once."""
    day = AT.replace(hour=0) - timedelta(days=2)
    oracle = make_oracle(market, tmp_path, None)
    first = oracle.backfill(day, day + timedelta(days=1), progress=False)
    second = oracle.backfill(day + timedelta(days=1), day + timedelta(days=2), progress=False)
    assert [d.session for d in first] == ["00:00Z", "06:00Z", "12:00Z", "18:00Z"]
    assert first[0].decided_at == day + timedelta(seconds=60)  # backfill_latency_s
    assert second[0].decided_at == day + timedelta(days=1, seconds=60)
    journal = store.read_journal(tmp_path / store.JOURNAL)
    assert len(journal) == 8 == len({d.decided_at for d in journal})
