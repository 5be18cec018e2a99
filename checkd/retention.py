"""Retention: the scheduler's per-check state, saved so a restart continues
SOFT/HARD sequences and flap histories where they were (Nagios' retention.dat).

Saved atomically (write, fsync, rename) every few seconds and at shutdown; after
a kill -9 the newest results still in the spool are laid over the snapshot.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from checkd.flapping import FlapDetector
from checkd.result import CheckKey
from checkd.states import StateType
from checkd.transitions import CheckState

log = logging.getLogger(__name__)
VERSION = 1


def _key(key: CheckKey) -> str:
    return json.dumps(list(key))


def dump(states: Mapping[CheckKey, CheckState]) -> bytes:
    items = {_key(k): {"status": s.status, "state_type": s.state_type.value, "attempt": s.attempt,
                       "last_check": s.last_check, "last_state_change": s.last_state_change,
                       "last_hard_state_change": s.last_hard_state_change, "output": s.output,
                       "flap": list(s.flap.states), "flapping": s.flap.flapping}
             for k, s in states.items()}
    return json.dumps({"version": VERSION, "checks": items}).encode()


def save(path: Path, states: Mapping[CheckKey, CheckState]) -> None:
    """Atomic replace; runs in a thread (it fsyncs)."""
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(dump(states))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load(path: Path) -> dict[CheckKey, CheckState]:
    """The saved states; an unreadable file is logged and ignored (checks start afresh)."""
    try:
        data = json.loads(path.read_bytes())
        if data.get("version") != VERSION:
            raise ValueError(f"retention version {data.get('version')!r}, expected {VERSION}")
        out = {}
        for k, v in data["checks"].items():
            host, service = json.loads(k)
            out[(host, service)] = CheckState(
                status=v["status"], state_type=StateType(v["state_type"]), attempt=v["attempt"],
                last_check=v["last_check"], last_state_change=v["last_state_change"],
                last_hard_state_change=v["last_hard_state_change"], output=v.get("output", ""),
                flap=FlapDetector(v["flap"], v["flapping"]))
        return out
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.warning("ignoring unreadable retention file %s (%s); checks start from OK", path, e)
        return {}


def overlay(states: dict[CheckKey, CheckState], records: Iterable[dict[str, Any]]) -> None:
    """Lay spooled results newer than the snapshot over it (records in seq order)."""
    for r in records:
        key = (r["host"], r.get("service"))
        st = states.setdefault(key, CheckState())
        if r.get("finished", 0) <= st.last_check:
            continue
        hard = r["state_type"] == "HARD" or r["status"] == 0
        if r["status"] != st.status:
            st.last_state_change = r["finished"]
        st.status = r["status"]
        st.state_type = StateType.HARD if hard else StateType.SOFT
        st.attempt = 1 if hard else r["attempt"]
        st.last_check = r["finished"]
        st.output = r.get("output", "")
