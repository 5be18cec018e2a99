"""The retention file: what a restart reads back, from this checkd and from an earlier one."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from checkd import retention
from checkd.flapping import FlapDetector
from checkd.states import StateType
from checkd.transitions import CheckState


def test_states_come_back_as_they_were_saved(tmp_path: Path) -> None:
    soft = CheckState(status=2, state_type=StateType.SOFT, attempt=2, last_check=1000.0, last_state_change=990.0,
                      last_hard_state_change=500.0, output="CRITICAL - disk full",
                      flap=FlapDetector([0, 2, 0, 2], True))
    states = {("h1", "Disk"): soft, ("h1", None): CheckState(last_check=999.0, output="PING OK")}
    kept = retention.Retained(states)
    kept.update(("h2", "Load"), CheckState(status=1, last_check=1001.0, output="WARNING - load 9"))
    kept.keep([("h1", "Disk"), ("h2", "Load")])        # h1's host check was removed by a reload
    retention.save(tmp_path / "retention.json", kept.snapshot())
    back = retention.load(tmp_path / "retention.json")
    assert set(back) == {("h1", "Disk"), ("h2", "Load")}
    disk = back[("h1", "Disk")]
    assert (disk.status, disk.state_type, disk.attempt, disk.last_check, disk.last_state_change,
            disk.last_hard_state_change, disk.output) == (2, StateType.SOFT, 2, 1000.0, 990.0, 500.0,
                                                          "CRITICAL - disk full")
    assert list(disk.flap.states) == [0, 2, 0, 2] and disk.flap.flapping
    assert back[("h2", "Load")].output == "WARNING - load 9"


def test_a_file_of_the_first_format_is_read_after_an_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "retention.json"
    path.write_text(json.dumps({"version": 1, "checks": {
        '["h1", "Disk"]': {"status": 2, "state_type": "SOFT", "attempt": 3, "last_check": 10.0,
                           "last_state_change": 5.0, "last_hard_state_change": 1.0, "output": "CRITICAL",
                           "flap": [0, 2], "flapping": False},
        '["h1", null]': {"status": 0, "state_type": "HARD", "attempt": 1, "last_check": 9.0,
                         "last_state_change": 1.0, "last_hard_state_change": 1.0, "flap": [], "flapping": False}}}))
    back = retention.load(path)
    assert back[("h1", "Disk")].attempt == 3 and back[("h1", "Disk")].state_type is StateType.SOFT
    assert back[("h1", None)].last_check == 9.0 and back[("h1", None)].output == ""


@pytest.mark.parametrize("text", ['{"version": 3, "checks": []}', '{"version": 2, "checks": [["h1"]]}',
                                  "{broken", '{"version": 2, "checks": [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]]}'])
def test_an_unreadable_file_is_logged_and_checks_start_afresh(tmp_path: Path, text: str,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "retention.json"
    path.write_text(text)
    with caplog.at_level(logging.WARNING):
        assert retention.load(path) == {}
    assert f"ignoring unreadable retention file {path}" in caplog.text
