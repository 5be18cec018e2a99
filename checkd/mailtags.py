"""Mail that filters can sort: the subject template (`email: subject:`) and a contact's
address template (`ops+{label}@example.com`), checked when the config loads and
filled for each message. Placeholders are `{name}`; `{{` and `}}` are literal braces.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping

from checkd.config.errors import did_you_mean

SUBJECT_FIELDS = ("subject", "label", "type", "state", "site")
ADDRESS_FIELDS = ("label",)
DEFAULT_SUBJECT = "{subject}"           # the subject exactly as without a template

_FORMATTER = string.Formatter()


def problem(template: str, fields: Iterable[str]) -> str | None:
    """Why `template` cannot be used (None: it can), as the fix to suggest."""
    known = tuple(fields)
    shown = ", ".join(f"{{{f}}}" for f in known)
    try:
        parts = list(_FORMATTER.parse(template))
    except ValueError as e:                 # a lone { or }
        return f"{e}; placeholders are {shown} (a literal brace is {{{{ or }}}})"
    for _literal, field, spec, conversion in parts:
        if field is None:
            continue
        if field not in known or spec or conversion:
            # No attribute access, indexing or format specs: only the names below.
            return (f"unknown placeholder {{{field}{'!' + conversion if conversion else ''}"
                    f"{':' + spec if spec else ''}}}{did_you_mean(field, known)}; known: {shown}")
    return None


def fill(template: str, values: Mapping[str, str]) -> str:
    """`template` with each placeholder replaced; the template passed problem() at load."""
    return "".join(literal + (values[field] if field is not None else "")
                   for literal, field, _spec, _conversion in _FORMATTER.parse(template))


def is_template(text: str) -> bool:
    return "{" in text or "}" in text


def address_problem(address: str) -> str | None:
    """A contact's email address template: `{label}` in the part before the @."""
    why = problem(address, ADDRESS_FIELDS)
    if why is not None:
        return why
    _local, at, domain = address.rpartition("@")
    if not at or is_template(domain):
        return "put {label} before the @, e.g. ops+{label}@example.com (a sub-address)"
    return None


def subject_problem(template: str) -> str | None:
    why = problem(template, SUBJECT_FIELDS)
    if why is None and "subject" not in {field for _, field, _, _ in _FORMATTER.parse(template)}:
        return ("must contain {subject}: the subject with its [ID#:...] is what phones, "
                "the bot and threading rely on, e.g. \"[checkd {label}] {subject}\"")
    return why
