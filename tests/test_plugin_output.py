"""Plugin output and perfdata are read as the Nagios plugin guidelines say."""

from __future__ import annotations

import math

import pytest

from checkd.perfdata import Range, parse
from checkd.plugin_output import RawRun, interpret, split_output
from checkd.states import Status


def test_multi_line_output_with_perfdata_in_the_long_output() -> None:
    text = ("DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n"
            "/ 15272 MB (77%);\n"
            "/boot 68 MB (69%);\n"
            "/home 69357 MB (27%);\n"
            "/var/log 819 MB (84%); | /boot=68MB;88;93;0;98\n"
            "/home=69357MB;253404;253409;0;253414\n"
            "/var/log=818MB;970;975;0;980\n")
    first, long_output, perf = split_output(text)
    assert first == "DISK OK - free space: / 3326 MB (56%);"
    assert long_output == "/ 15272 MB (77%);\n/boot 68 MB (69%);\n/home 69357 MB (27%);\n/var/log 819 MB (84%); "
    assert perf == ("/=2643MB;5948;5958;0;5968 /boot=68MB;88;93;0;98 "
                    "/home=69357MB;253404;253409;0;253414 /var/log=818MB;970;975;0;980")
    metrics, errors = parse(perf)
    assert [m.label for m in metrics] == ["/", "/boot", "/home", "/var/log"] and errors == []


def test_quoted_labels_units_and_thresholds() -> None:
    metrics, errors = parse("'in octets'=1234c;;;0 'it''s'=5% time=0.012s;0.5;1;0; rta=U;;")
    assert errors == []
    octets, quote, time_, rta = metrics
    assert (octets.label, octets.value, octets.uom, octets.is_counter, octets.min) == ("in octets", 1234, "c", True, 0)
    assert (quote.label, quote.uom) == ("it's", "%")
    assert time_.warn == Range(0, 0.5, False, "0.5") and time_.crit.end == 1
    assert rta.value is None


@pytest.mark.parametrize("text, start, end, inside, alerts, quiet", [
    ("10", 0, 10, False, [-1, 11], [0, 10]),
    ("10:", 10, math.inf, False, [9], [10, 1e9]),
    ("~:10", -math.inf, 10, False, [11], [-1e9, 10]),
    ("10:20", 10, 20, False, [9, 21], [10, 20]),
    ("@10:20", 10, 20, True, [10, 20], [9, 21]),
])
def test_ranges(text: str, start: float, end: float, inside: bool, alerts: list[float], quiet: list[float]) -> None:
    r = Range.parse(text)
    assert (r.start, r.end, r.inside) == (start, end, inside)
    assert all(r.alerts(v) for v in alerts) and not any(r.alerts(v) for v in quiet)


def test_broken_perfdata_items_are_skipped_with_a_reason() -> None:
    metrics, errors = parse("ok=1 novalue= x=abc y=1;2;3;4;5;6 z=inf 'open=3")
    assert [m.label for m in metrics] == ["ok"]
    assert len(errors) == 5


def test_interpretation_of_failures() -> None:
    assert interpret(RawRun(timed_out=True, timeout=2.5)).output == "(check timed out after 2.5s)"
    assert interpret(RawRun(error="ssh to h:22: connection refused")).status is Status.UNKNOWN
    assert interpret(RawRun(exit_code=0, stdout=b"OK\x00zero")).output == "OK\ufffdzero"
    crlf = interpret(RawRun(exit_code=1, stdout=b"WARN - x|a=1\r\nmore\r\n"))
    assert (crlf.status, crlf.output, crlf.long_output, crlf.perfdata) == (Status.WARNING, "WARN - x", "more", "a=1")
