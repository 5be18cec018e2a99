"""`use:` inheritance: an object takes every key it lacks from its templates.

Several levels and several templates (`use: [a, b]`, the first wins) as in
Nagios; a missing template or a cycle is a config problem at the `use:` line.
"""

from __future__ import annotations

from checkd.config.errors import Problems, did_you_mean
from checkd.config.yamlsource import Node


def index_templates(items: list[Node], problems: Problems) -> dict[str, Node]:
    out: dict[str, Node] = {}
    for t in items:
        name = t.get("name")
        if not isinstance(name, str) or not name:
            problems.add(t.file, t.line, "template without a name: add `name: ...`")
            continue
        if name in out:
            first = out[name]
            problems.add(t.file, t.line, f"duplicate template {name!r} (first at {first.file}:{first.line})")
            continue
        out[name] = t
    return out


def _uses(node: Node) -> list[str]:
    use = node.get("use")
    if use is None:
        return []
    if isinstance(use, str):
        return [u.strip() for u in use.split(",") if u.strip()]
    if isinstance(use, list):
        return [str(u) for u in use]
    return []


def resolve(node: Node, templates: dict[str, Node], problems: Problems) -> Node:
    """`node` with inherited keys filled in (`use` and template `name` dropped); `node` itself
    when it uses no template (most entries of a big generated file: no copy of each)."""
    if "use" not in node:
        return node
    merged = Node()
    merged.file, merged.line, merged.key_lines = node.file, node.line, {}
    merged.key_files = {}
    _merge_into(merged, node, templates, problems, chain=())
    merged.pop("use", None)
    return merged


def _merge_into(merged: Node, node: Node, templates: dict[str, Node], problems: Problems,
                chain: tuple[str, ...]) -> None:
    for key, value in node.items():
        if key in ("use", "name") and chain:
            continue  # a template's own name is not inherited
        if key not in merged:
            merged[key] = value
            merged.key_lines[key] = node.line_of(key)
            merged.key_files[key] = node.file
    if "use" in node and not isinstance(node["use"], (str, list)):
        problems.add(node.file, node.line_of("use"), "use: expected a template name or a list of names")
    for name in _uses(node):
        tpl = templates.get(name)
        if tpl is None:
            problems.add(node.file, node.line_of("use"),
                         f"unknown template {name!r}{did_you_mean(name, templates)}")
            continue
        if name in chain:
            loop = " -> ".join([*chain, name])
            problems.add(tpl.file, tpl.line_of("use"), f"template cycle: {loop}")
            continue
        _merge_into(merged, tpl, templates, problems, chain + (name,))
