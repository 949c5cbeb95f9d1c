"""A seeded mutation generator for YAML config documents (the fuzz tests of the config loaders).

`mutated_yaml(doc, rng)` applies one to three random mutations to a copy of a parsed YAML document and returns
the YAML text (possibly truncated, so possibly not valid YAML) and a description of what was done:

* ``delete``: remove a key of some mapping, or an item of some list;
* ``retype``: replace some value with a value of another type (`JUNK`);
* ``junk_key``: add a key (`JUNK_KEYS`: misspellings, numbers, null, empty) to some mapping;
* ``nest``: wrap some value in a list or a mapping, or replace a list or mapping by its first element;
* ``root``: replace the whole document by a non-mapping;
* ``truncate``: cut the YAML text at a random character.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import yaml

JUNK: list[Any] = [
    None,
    0,
    -3,
    1.5,
    float("nan"),
    True,
    False,
    "",
    "x",
    "no",
    "1e-5",
    [],
    [None],
    [1, "a"],
    {},
    {"a": 1},
    {"name": 3},
]
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when installed: the same YAML, faster
JUNK_KEYS: list[Any] = ["zz", "nme", 1, None, "", "include", True]


def _nodes(doc: Any, path: tuple = ()) -> list[tuple[tuple, Any]]:
    """Every (path, container) pair of mappings and lists in ``doc``, the root included."""
    out = []
    if isinstance(doc, (dict, list)):
        out.append((path, doc))
        items = doc.items() if isinstance(doc, dict) else enumerate(doc)
        for key, value in items:
            out.extend(_nodes(value, (*path, key)))
    return out


def _slots(doc: Any) -> list[tuple[Any, Any]]:
    """(container, key) for every value held by a mapping or list of ``doc``."""
    return [
        (node, key) for _, node in _nodes(doc) for key in (list(node) if isinstance(node, dict) else range(len(node)))
    ]


def mutate(doc: Any, rng: random.Random) -> tuple[Any, str]:
    """One mutation of ``doc`` (in place where possible); returns the new document and what was done."""
    kind = rng.choice(["delete", "retype", "retype", "junk_key", "nest", "root"])
    slots = _slots(doc)
    if kind == "root" or not slots:
        new = rng.choice([[doc], "just a string", 42, [1, 2], None, True])
        return new, f"root -> {new!r:.40}"
    container, key = rng.choice(slots)
    if kind == "delete":
        del container[key]
        return doc, f"delete {key!r}"
    if kind == "retype":
        container[key] = copy.deepcopy(rng.choice(JUNK))
        return doc, f"retype {key!r} -> {container[key]!r}"
    if kind == "junk_key":
        maps = [node for _, node in _nodes(doc) if isinstance(node, dict)]
        if not maps:
            return doc, "junk_key (no mapping)"
        target = maps[0] if rng.random() < 0.5 else rng.choice(maps)  # the root's keys half of the time
        junk = rng.choice(JUNK_KEYS)
        target[junk] = copy.deepcopy(rng.choice(JUNK))
        return doc, f"junk_key {junk!r}"
    value = container[key]
    if isinstance(value, (list, dict)) and value and rng.random() < 0.5:
        container[key] = value[0] if isinstance(value, list) else next(iter(value.values()))
        return doc, f"unnest {key!r}"
    container[key] = rng.choice([[value], {"x": value}, {key if isinstance(key, str) else "k": value}])
    return doc, f"nest {key!r}"


def mutated_yaml(doc: Any, rng: random.Random) -> tuple[str, str]:
    """YAML text of ``doc`` after 1-3 mutations, cut at a random point one time in six; and a description."""
    doc = copy.deepcopy(doc)
    done = []
    for _ in range(rng.randint(1, 3)):
        doc, what = mutate(doc, rng)
        done.append(what)
    text = yaml.dump(doc, Dumper=_DUMPER, sort_keys=False)
    if rng.random() < 1 / 6:
        cut = rng.randrange(len(text) + 1)
        text = text[:cut]
        done.append(f"truncate at {cut}")
    return text, "; ".join(done)
