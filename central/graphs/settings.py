"""The node file's `rrd:` section as one immutable value: where files live, the
rrdcached address, the archive layout new files get, and the writer's queue bound.
The keys are checked in checkd/config/node.py; this module only resolves them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DAY = 86400
DEFAULTS = {"keep_full": 8 * DAY, "mid_step": 1800, "keep_mid": 60 * DAY, "long_step": DAY,
            "keep_long": 730 * DAY, "queue": 200_000}


@dataclasses.dataclass(frozen=True, slots=True)
class RrdSettings:
    dir: Path
    rrdcached: str = ""                 # "" (write files directly), unix:/path, /path or host:port
    keep_full: int = DEFAULTS["keep_full"]      # every value, at the service's interval
    mid_step: int = DEFAULTS["mid_step"]        # then averages/min/max of this step ...
    keep_mid: int = DEFAULTS["keep_mid"]        # ... for this long
    long_step: int = DEFAULTS["long_step"]
    keep_long: int = DEFAULTS["keep_long"]
    queue: int = DEFAULTS["queue"]              # results waiting for the writer before new ones are dropped

    @classmethod
    def from_section(cls, section: Mapping[str, Any], base: Path, state_dir: Path) -> RrdSettings:
        """`base`: the node file's directory (relative paths are taken from there)."""
        directory = base / section["dir"] if section.get("dir") else state_dir / "rrd"
        values = {k: int(section.get(k, v)) for k, v in DEFAULTS.items()}
        return cls(dir=directory.resolve(), rrdcached=resolve_address(section.get("rrdcached", ""), base),
                   **values)

    def to_json(self) -> str:
        return json.dumps({**dataclasses.asdict(self), "dir": str(self.dir)})

    @classmethod
    def from_json(cls, text: str) -> RrdSettings:
        d = json.loads(text)
        return cls(**{**d, "dir": Path(d["dir"])})


def resolve_address(address: str, base: Path) -> str:
    """rrdcached addresses as librrd takes them; a relative unix socket path is taken
    from the node file's directory, like every other path there."""
    if not address:
        return ""
    if address.startswith("unix:"):
        path = Path(address[5:])
        return "unix:" + str(path if path.is_absolute() else (base / path).resolve())
    if address.startswith("/"):
        return "unix:" + address
    return address
