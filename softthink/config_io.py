"""Config I/O shared by every config of softthink: YAML files with ``include:``, key checks, ``--set`` parsing.

The rules, the same for decode presets, RL recipes and eval suites:

* **Files.** A config file holds one YAML mapping. ``include: base.yaml`` (or a list of files) starts from other
  files, resolved relative to the including file (decode presets may also name a preset). Mappings merge key by
  key, recursively; lists and scalars replace; later includes win over earlier ones, and the including file wins
  over all of them. A missing file, invalid YAML, a document that is not a mapping and an include cycle are
  `SoftthinkConfigError`s that name the file.
* **Keys.** `check_keys` rejects keys outside the allowed set, with "did you mean" suggestions.
* **--set.** `parse_set` reads ``KEY=VALUE``: VALUE is parsed as YAML and coerced to the type of the target
  dataclass field. ``bool`` takes true/false/yes/no only; ``float`` takes ``1e-5``; ``int`` rejects ``1.5``;
  ``X | None`` takes ``null``; ``str`` keeps the raw text (``think_end=\\boxed``); ``list[str]`` takes a
  YAML list or one raw string. Dotted keys (``decode_overrides.max_new_tokens=32``) address nested mappings
  where the caller allows them.
* **Types.** `check_types` / `check_field_types` check every value against its field's annotation, for YAML,
  dicts and Python keyword arguments alike: ``bool`` takes only True/False (not ``"no"``, not 1); ``int`` takes
  ints but not bools; ``float`` takes ints and floats but not bools or strings; ``str``, ``list[str]``,
  ``list[int]`` and ``dict[...]`` take what they say; ``X | None`` also takes None. Other annotations are
  left to the config's own checks. A mismatch is a `SoftthinkConfigError` naming the field, the value and its type.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NoReturn

import yaml

from softthink.errors import SoftthinkConfigError, unknown_name_message

Locate = Callable[[str, Path], Path]
"""``locate(include_value, including_file) -> path of the included file``."""


# --- files ------------------------------------------------------------------------------------------------------
def merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``top``: nested mappings merge recursively, anything else in ``top`` replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in top.items():
        both_maps = isinstance(value, Mapping) and isinstance(out.get(key), Mapping)
        out[key] = merge(out[key], value) if both_maps else copy.deepcopy(value)
    return out


def relative_to_including_file(name: str, including: Path) -> Path:
    """The default include resolution: ``name`` relative to the folder of the including file."""
    return including.parent / os.path.expanduser(name)


def read_yaml_mapping(path: str | os.PathLike, *, what: str, hint: str = "") -> dict[str, Any]:
    """The mapping of one YAML file (an empty file is ``{}``); ``what`` names the kind of file in errors."""
    path = Path(path)
    if not path.is_file():
        raise SoftthinkConfigError(f"{what} file {path} does not exist. {hint}".rstrip(), param=what, value=str(path))
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise SoftthinkConfigError(
            f"{what} file {path} is not valid YAML: {err}", param=what, value=str(path)
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SoftthinkConfigError(
            f"{what} file {path} must hold a mapping of key: value, got "
            f"{type(data).__name__}. Write one `key: value` per line.",
            param=what,
            value=str(path),
        )
    return data


def read_config(
    path: str | os.PathLike, *, what: str, locate: Locate = relative_to_including_file, hint: str = ""
) -> dict[str, Any]:
    """The mapping of ``path`` with its ``include:`` chain merged (see the module docstring for the rules).

    ``what`` names the kind of file in errors ("suite", "recipe", ...); ``locate`` resolves an include value;
    ``hint`` is appended when ``path`` itself does not exist.
    """
    return _read(Path(path), what, locate, hint, seen=())


def _read(path: Path, what: str, locate: Locate, hint: str, seen: tuple[Path, ...]) -> dict[str, Any]:
    key = path.resolve()
    if key in seen:
        chain = " -> ".join(str(p) for p in (*seen, key))
        raise SoftthinkConfigError(
            f"{what} include cycle: {chain}. Remove one of these includes.", param="include", value=str(path)
        )
    data = read_yaml_mapping(path, what=what, hint=hint)
    includes = data.pop("include", None)
    if includes is None:
        return data
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(i, str) and i for i in includes):
        raise SoftthinkConfigError(
            f"{what} file {path}: include must be a file name or a list of file names, got {includes!r}.",
            param="include",
            value=includes,
        )
    merged: dict[str, Any] = {}
    for name in includes:
        target = locate(name, path)
        if not target.is_file():
            raise SoftthinkConfigError(
                f"{what} file {path} includes {name!r}, which does not exist at {target}. "
                "Include paths are relative to the including file.",
                param="include",
                value=name,
            )
        merged = merge(merged, _read(target, what, locate, hint, (*seen, key)))
    return merge(merged, data)


# --- keys -------------------------------------------------------------------------------------------------------
def check_keys(
    values: Iterable[str],
    allowed: Iterable[str],
    *,
    what: str,
    source: str | None = None,
    listing: str | None = None,
    all_at_once: bool = False,
) -> None:
    """Raise `SoftthinkConfigError` for keys of ``values`` not in ``allowed``, with "did you mean" suggestions.

    ``what`` is the kind of key ("decode option"); ``source`` the file the keys came from; ``listing`` replaces
    the list of allowed keys in the message (for very long lists). By default the first unknown key is
    reported; ``all_at_once`` reports all of them (``unknown suite key(s) 'a', 'b'``).
    """
    allowed = list(allowed)
    unknown = [str(key) for key in values if key not in allowed]  # (YAML keys may be numbers)
    if not unknown:
        return
    where = f" (in {source})" if source else ""
    names = unknown if all_at_once else unknown[0]
    raise SoftthinkConfigError(
        f"{unknown_name_message(what, names, allowed, listing=listing)}{where}", param=unknown[0]
    )


def dataclass_fields(cls: type) -> dict[str, Any]:
    """``{name: annotation}`` of the init fields of dataclass ``cls``: the schema `parse_set` coerces to."""
    return {f.name: f.type for f in dataclasses.fields(cls) if f.init}


# --- --set KEY=VALUE --------------------------------------------------------------------------------------------
def parse_set(
    pairs: Iterable[str] | None,
    fields: Mapping[str, Any],
    *,
    what: str,
    nested: Mapping[str, Mapping[str, Any]] | None = None,
    dotted: bool = False,
    listing: str | None = None,
) -> dict[str, Any]:
    """``["top_p=0.9", "do_sample=no"]`` -> ``{"top_p": 0.9, "do_sample": False}``, coerced to ``fields``.

    ``fields`` maps each allowed key to its annotation (`dataclass_fields`). With ``dotted``, ``a.b.c=v`` is
    allowed when ``a`` is a field; ``nested[a]`` (a schema like ``fields``) types the keys one level below
    ``a``. Unknown keys and values of the wrong type raise `SoftthinkConfigError`.
    """
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SoftthinkConfigError(
                f"--set expects key=value, got {pair!r}. For example --set max_new_tokens=64.",
                param="--set",
                value=pair,
            )
        parts = key.split(".") if dotted else [key]
        check_keys([parts[0]], fields, what=what, listing=listing)
        annotation = fields[parts[0]]
        if len(parts) > 1:
            schema = (nested or {}).get(parts[0])
            annotation = None
            if schema is not None and len(parts) == 2:
                check_keys([parts[1]], schema, what=f"{parts[0]} key")
                annotation = schema[parts[1]]
        out[key] = coerce(key, raw, annotation)
    return out


_BOOL_WORDS = {"true": True, "yes": True, "false": False, "no": False}


def coerce(key: str, raw: str, annotation: Any) -> Any:
    """The ``--set`` text ``raw`` as a value of type ``annotation`` (None: plain YAML). See `parse_set`."""
    kinds, nullable = _kinds(annotation)
    text = raw.strip()
    if nullable and text in ("null", "~", "None", ""):
        return None
    if kinds == {"str"}:
        return raw

    def fail(expected: str, example: str) -> NoReturn:
        raise SoftthinkConfigError(
            f"--set {key}={raw!r}: expected {expected}. For example --set {key}={example}.", param=key, value=raw
        )

    if kinds == {"bool"}:
        if text.lower() not in _BOOL_WORDS:
            fail("true or false (or yes/no)", "false")
        return _BOOL_WORDS[text.lower()]
    try:
        value = yaml.safe_load(raw) if text else None
    except yaml.YAMLError:
        value = raw
    if kinds == {"strlist"} and not isinstance(value, list):
        return raw  # one string: `stop_strings=Question:` (YAML would read a mapping); the config wraps it
    if kinds == {"int"}:
        if isinstance(value, bool) or not isinstance(value, int):
            fail("an integer" + (" or null" if nullable else ""), "3")
        return value
    if "float" in kinds and kinds <= {"int", "float"}:
        if isinstance(value, bool):
            fail("a number", "1e-5")
        if isinstance(value, int) and "int" in kinds:
            return value
        if isinstance(value, (int, float, str)):
            try:
                return float(value)  # YAML 1.1 reads '1e-5' as a string
            except ValueError:
                pass
        fail("a number" + (" or null" if nullable else ""), "1e-5")
    return value


_NAMED_KINDS = {
    "bool": "bool",
    "int": "int",
    "float": "float",
    "str": "str",
    "list[str]": "strlist",
    "list[int]": "intlist",
}


def _kinds(annotation: Any) -> tuple[set[str], bool]:
    """({'int'}, True) for ``int | None``; the kinds are 'bool', 'int', 'float', 'str', 'strlist' or 'other'."""
    if annotation is None or annotation is Any:
        return {"other"}, True
    if isinstance(annotation, str):
        text = annotation.replace(" ", "")
        for wrapper in ("Optional[", "Union["):
            if text.startswith(wrapper) and text.endswith("]"):
                text = text[len(wrapper) : -1].replace(",", "|") + ("|None" if wrapper == "Optional[" else "")
        names = set(text.split("|"))
        nullable = bool(names & {"None", "NoneType"})
        names -= {"None", "NoneType"}
        return {
            _NAMED_KINDS.get(n, "dict" if n == "dict" or n.startswith("dict[") else "other") for n in names
        }, nullable
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        kinds = set().union(*(_kinds(a)[0] for a in args if a is not type(None)))
        return kinds, type(None) in args
    if typing.get_origin(annotation) is list and typing.get_args(annotation) in ((str,), (int,)):
        return {"strlist" if typing.get_args(annotation) == (str,) else "intlist"}, False
    if annotation is dict or typing.get_origin(annotation) is dict:
        return {"dict"}, False
    return ({annotation.__name__} if annotation in (bool, int, float, str) else {"other"}), False


# --- value types ------------------------------------------------------------------------------------------------
_KIND_TEXT = {
    "bool": "true or false",
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "strlist": "a list of strings",
    "intlist": "a list of integers",
    "dict": "a mapping (key: value)",
}


def _matches(value: Any, kind: str) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":  # Python ints, as YAML and literals give them (the configs' own checks use isinstance int)
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind in ("strlist", "intlist"):
        item = "str" if kind == "strlist" else "int"
        return isinstance(value, list) and all(_matches(v, item) for v in value)
    if kind == "dict":
        return isinstance(value, Mapping)
    return True  # "other": the config's own checks decide


def _type_hint(param: str, value: Any, kinds: set[str]) -> str:
    if isinstance(value, str) and "bool" in kinds and value.strip().lower() in _BOOL_WORDS:
        word = str(_BOOL_WORDS[value.strip().lower()])
        return f"Write {param}={word} (YAML: {word.lower()}); a string such as {value!r} is not a bool."
    if isinstance(value, str) and kinds & {"int", "float"}:
        try:
            float(value)
        except ValueError:
            return ""
        return "Write the number without quotes (YAML reads 1e-5 as a string: write 1.0e-5)."
    if isinstance(value, bool) and kinds & {"int", "float"}:
        return "A bool is not a number here."
    return ""


def check_type(param: str, value: Any, annotation: Any, *, what: str, where: str = "") -> None:
    """Raise `SoftthinkConfigError` unless ``value`` fits ``annotation`` (see "Types" in the module docstring).

    ``what`` prefixes the field in the message (``decode`` -> ``decode.top_p``); ``where`` is appended after the
    value (`` (in presets/x.yaml)``).
    """
    kinds, nullable = _kinds(annotation)
    if "other" in kinds or (value is None and nullable) or any(_matches(value, k) for k in kinds):
        return
    expected = " or ".join(_KIND_TEXT[k] for k in sorted(kinds)) + (" or null" if nullable else "")
    hint = _type_hint(param, value, kinds)
    raise SoftthinkConfigError(
        f"{what}.{param} must be {expected}, got {value!r} ({type(value).__name__}){where}. {hint}".rstrip(),
        param=param,
        value=value,
    )


def check_types(
    values: Mapping[str, Any], schema: Mapping[str, Any], *, what: str, where: str = "", skip: Iterable[str] = ()
) -> None:
    """`check_type` for each key of ``values`` that ``schema`` (``{name: annotation}``) types, except ``skip``."""
    skipped = set(skip)
    for name, value in values.items():
        if name in schema and name not in skipped:
            check_type(name, value, schema[name], what=what, where=where)


def check_field_types(obj: Any, *, what: str, where: str = "", skip: Iterable[str] = ()) -> None:
    """`check_type` for every init field of the dataclass instance ``obj`` (call it first in ``__post_init__``)."""
    schema = dataclass_fields(type(obj))
    check_types({name: getattr(obj, name) for name in schema}, schema, what=what, where=where, skip=skip)
