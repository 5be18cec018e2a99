"""What a new RRD file looks like: one DS (GAUGE, or DERIVE with min 0 for counters,
so a counter reset is a gap, not a spike), a heartbeat that survives one missed
check, and archives: every value for `keep_full` (at least 8 days, so the
week-over-week line compares like with like), then average/min/max at `mid_step`
for `keep_mid`, and at `long_step` for `keep_long`. Fixed size for ever.
"""

from __future__ import annotations

import math

from central.graphs.catalog import DERIVE, GAUGE
from central.graphs.settings import RrdSettings

HEARTBEAT_STEPS = 2.5           # one missed check (2 steps) plus latency still joins the line


def kind_of(uom: str) -> str:
    return DERIVE if uom == "c" else GAUGE


def step_of(interval: float) -> int:
    return max(1, int(round(interval)))


def heartbeat(step: int) -> int:
    return max(2, math.ceil(step * HEARTBEAT_STEPS))


def create_args(step: int, kind: str, ds: str, s: RrdSettings) -> list[str]:
    """Everything after the file name and --start for `rrdtool create`."""
    lo = "0" if kind == DERIVE else "U"
    args = ["--step", str(step), f"DS:{ds}:{kind}:{heartbeat(step)}:{lo}:U",
            f"RRA:AVERAGE:0.5:1:{math.ceil(s.keep_full / step)}"]
    for cstep, keep in ((s.mid_step, s.keep_mid), (s.long_step, s.keep_long)):
        per_row = max(1, round(cstep / step))
        rows = max(1, math.ceil(keep / (per_row * step)))
        args += [f"RRA:{cf}:0.5:{per_row}:{rows}" for cf in ("AVERAGE", "MIN", "MAX")]
    return args
