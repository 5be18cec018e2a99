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

from checkd import json_codec
from checkd.flapping import FlapDetector
from checkd.result import CheckKey
from checkd.states import StateType, settled_type
from checkd.transitions import CheckState

log = logging.getLogger(__name__)
VERSION = 2                     # 1: {"checks": {"[host, service]": {...}}}, still read


def row(key: CheckKey, s: CheckState) -> list[Any]:
    return [key[0], key[1], s.status, s.state_type.value, s.attempt, s.last_check, s.last_state_change,
            s.last_hard_state_change, s.output, list(s.flap.states), s.flap.flapping]


class Retained:
    """The rows of the next retention file, each built and JSON-encoded when its check's
    result arrives, so a save only joins ready bytes. Building 100k dicts every 5 s cost a
    fifth of a core at 10k checks/s, and encoding 100k ready rows in one json.dumps still
    held the interpreter lock for ~0.2 s per save at 100k checks (bench/poller_throughput.py):
    a cost per save that grew with the number of checks, not with the results. Encoded rows
    are bytes, never changed, so a thread can write a snapshot while results go on arriving."""

    def __init__(self, states: Mapping[CheckKey, CheckState]):
        self.rows = {k: _encode(row(k, s)) for k, s in states.items()}

    def update(self, key: CheckKey, state: CheckState) -> None:
        self.rows[key] = _encode(row(key, state))

    def keep(self, keys: Iterable[CheckKey]) -> None:
        """After a reload: forget the checks that are gone."""
        keys = set(keys)
        self.rows = {k: r for k, r in self.rows.items() if k in keys}

    def snapshot(self) -> list[bytes]:
        return list(self.rows.values())


def _encode(r: list[Any]) -> bytes:
    return json_codec.dumps(r)


def save(path: Path, rows: list[bytes]) -> None:
    """Atomic replace; runs in a thread (it fsyncs)."""
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(b'{"version": %d, "checks": [' % VERSION)
        f.write(b", ".join(rows))
        f.write(b"]}")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load(path: Path) -> dict[CheckKey, CheckState]:
    """The saved states; an unreadable file is logged and ignored (checks start afresh)."""
    try:
        data = json.loads(path.read_bytes())
        version = data.get("version")
        if version == 1:
            rows = [[*json.loads(k), v["status"], v["state_type"], v["attempt"], v["last_check"],
                     v["last_state_change"], v["last_hard_state_change"], v.get("output", ""), v["flap"],
                     v["flapping"]] for k, v in data["checks"].items()]
        elif version == VERSION:
            rows = data["checks"]
        else:
            raise ValueError(f"retention version {version!r}, expected {VERSION} (a newer checkd wrote it)")
        out = {}
        for host, service, status, state_type, attempt, last, lsc, lhsc, output, flap, flapping in rows:
            out[(host, service)] = CheckState(
                status=status, state_type=StateType(state_type), attempt=attempt, last_check=last,
                last_state_change=lsc, last_hard_state_change=lhsc, output=output,
                flap=FlapDetector(flap, flapping))
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
        if r["status"] != st.status:
            st.last_state_change = r["finished"]
        st.status = r["status"]
        st.state_type = settled_type(r["status"], StateType(r["state_type"]))
        st.attempt = 1 if st.state_type is StateType.HARD else r["attempt"]
        st.last_check = r["finished"]
        st.output = r.get("output", "")
