"""`DecodeConfig`: every decoding knob in one validated dataclass, plus YAML presets.

The fields shared by every mode are declared here; each mode's own knobs (``max_topk``, ``noise``,
``entropy_threshold``, ...) are declared by its rule file as `softthink.decoding.rules.RuleParam`s and added here
as flat fields of the same dataclass, validated by the param's check (`_add_rule_fields`).

Precedence when building a config: dataclass defaults < preset YAML (``configs/decode/<name>.yaml``) < explicit
keyword overrides (``softthink.generate(..., top_p=0.9)``, or ``--set top_p=0.9`` on the command line).
Unknown keys are errors. Checks that need the tokenizer or the model (is the think marker representable?) run
later, in `softthink.decoding.markers.resolve_think_marker`, not here.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from softthink.config_io import check_field_types, check_keys, read_config, relative_to_including_file
from softthink.decoding.rules import available_modes, on_params_changed, registered_params, rule_class
from softthink.decoding.rules.base import positive_int
from softthink.decoding.rules.fields import RuleFields
from softthink.errors import SoftthinkConfigError, unknown_name_message
from softthink.resources import bundled_config_dir


def _help(default: Any, text: str) -> Any:
    return field(default=default, metadata={"help": text})


FIELDS_OMITTED_AT_DEFAULT = ("ignore_eos", "compile")
"""Fields added after eval results were stored: left out of `DecodeConfig.identity_dict` at their defaults, so the
stored cells keep their hashes (a run with the field set gets new cells)."""


@dataclass
class DecodeConfig(RuleFields):
    """How to decode. Every field has a default; presets list only what they change.

    The generation has up to two phases. *Thinking* lasts until the think-end marker is the visible token (or is
    injected by Cold Stop or the thinking budget); *answering* follows, always with discrete tokens. Without a
    think marker the whole generation is one discrete answering phase.
    """

    # --- mode -------------------------------------------------------------------------------------------------
    mode: str = _help("soft", "decode rule for the thinking phase: see softthink.available_modes()")
    max_new_tokens: int = _help(512, "cap on generated tokens, thinking + answer")

    # --- thinking phase ---------------------------------------------------------------------------------------
    think_end: str | None = _help(
        "auto",
        "marker that ends thinking. 'auto': '</think>' when the tokenizer has it as one token, else no "
        "thinking phase; any other string (may be several tokens); None: no thinking phase",
    )
    max_think_tokens: int | None = _help(None, "thinking budget in tokens; when spent the marker is injected")
    cold_stop_entropy: float | None = _help(
        None,
        "Cold Stop: end thinking after `cold_stop_patience` consecutive thinking steps with entropy below "
        "this many nats (paper: 0.01). None disables",
    )
    cold_stop_patience: int = _help(256, "Cold Stop patience in consecutive low-entropy thinking steps")

    # --- sampling (thinking phase; the whole generation when there is no thinking phase) ----------------------
    do_sample: bool = _help(False, "sample discrete tokens; False = greedy")
    temperature: float = _help(1.0, "softmax temperature; also the temperature of the reported entropy")
    top_k: int = _help(0, "keep the k most likely tokens; 0 disables")
    top_p: float = _help(1.0, "nucleus filter in (0, 1]; 1.0 disables")
    min_p: float = _help(0.0, "drop tokens below min_p * p(top-1), in [0, 1); 0 disables")

    # --- answering phase (None = same as thinking) ------------------------------------------------------------
    answer_do_sample: bool | None = _help(None, "sample answer tokens; None = same as do_sample")
    answer_temperature: float | None = _help(None, "answer temperature; None = same as temperature")
    answer_top_k: int | None = _help(None, "answer top-k; None = same as top_k")
    answer_top_p: float | None = _help(None, "answer top-p; None = same as top_p")
    answer_min_p: float | None = _help(None, "answer min-p; None = same as min_p")

    # --- mode knobs: declared by the rule files (soft: max_topk, noise, ...; gated: entropy_threshold; ...) -----
    # and inserted here by `_add_rule_fields`; their static types come from `RuleFields`.

    # --- output -----------------------------------------------------------------------------------------------
    ignore_eos: bool = _help(
        False,
        "keep decoding past end-of-sequence tokens, to max_new_tokens or a stop string (benchmarks: every row "
        "decodes the same number of steps)",
    )
    stop_strings: list[str] = field(
        default_factory=list, metadata={"help": "answer stops when the generated text contains one of these"}
    )
    seed: int | None = _help(0, "random seed for sampling and noise; None = nondeterministic")
    chat_template: bool = _help(True, "apply the tokenizer's chat template to string prompts when it has one")
    trace: bool = _help(True, "record per-step entropy, kept tokens and weights")

    # --- engine -----------------------------------------------------------------------------------------------
    compile: bool = _help(
        False,
        "decode with a static KV cache and a torch.compile'd one-token forward (inductor; CUDA graphs on CUDA): "
        "same tokens as the eager loop, faster per step once compiled (the first call compiles, which takes "
        "seconds to minutes); needs a model whose layers all use full attention",
    )

    def __post_init__(self) -> None:
        self._normalise()
        self._check_fields()
        self._check_relations()

    # -- validation --------------------------------------------------------------------------------------------
    def _normalise(self) -> None:
        if isinstance(self.stop_strings, str):
            self.stop_strings = [self.stop_strings]
        elif isinstance(self.stop_strings, tuple):
            self.stop_strings = list(self.stop_strings)

    def _fail(self, param: str, rule: str, remedy: str) -> None:
        value = getattr(self, param)
        raise SoftthinkConfigError(f"decode.{param} {rule}, got {value!r}. {remedy}", param=param, value=value)

    def _check_fields(self) -> None:
        # Every field's type first (`do_sample="no"` is an error, not True); the rule params' types are checked
        # by `RuleParam.validated`, after their normalisation.
        check_field_types(self, what="decode", skip=[p.name for p in registered_params()])
        if self.mode not in available_modes():
            raise SoftthinkConfigError(
                f"decode.mode: {unknown_name_message('decode mode', str(self.mode), available_modes())}",
                param="mode",
                value=self.mode,
            )
        _positive_int(self, "max_new_tokens", "Use e.g. 512.")
        if self.max_think_tokens is not None:
            _positive_int(self, "max_think_tokens", "Use None for no thinking budget.")
        if self.cold_stop_entropy is not None and not self.cold_stop_entropy > 0:
            self._fail("cold_stop_entropy", "must be > 0 nats", "The paper uses 0.01; None disables Cold Stop.")
        _positive_int(self, "cold_stop_patience", "The paper uses 256.")
        for prefix in ("", "answer_"):
            self._check_sampling(prefix)
        for param in registered_params():  # every mode's knobs, checked by the rule that declares them
            setattr(self, param.name, param.validated(getattr(self, param.name)))
        if self.seed is not None and not isinstance(self.seed, int):
            self._fail("seed", "must be an int or None", "Use e.g. 0.")
        if any(not isinstance(s, str) or not s for s in self.stop_strings):
            self._fail("stop_strings", "must be non-empty strings", "Remove empty entries.")
        if self.think_end is not None and (not isinstance(self.think_end, str) or not self.think_end.strip()):
            self._fail("think_end", "must be a non-empty marker string, 'auto' or None", "Use '</think>'.")

    def _check_sampling(self, prefix: str) -> None:
        temperature, top_k, top_p, min_p = (
            getattr(self, prefix + n) for n in ("temperature", "top_k", "top_p", "min_p")
        )
        if temperature is not None and not temperature > 0:
            hint = " For greedy decoding set do_sample=False (the temperature then only scales the reported entropy)."
            self._fail(prefix + "temperature", "must be > 0", "Use 1.0." + (hint if temperature == 0 else ""))
        if top_k is not None and (not isinstance(top_k, int) or top_k < 0):
            self._fail(prefix + "top_k", "must be an int >= 0", "Use 0 to disable top-k filtering.")
        if top_p is not None and not 0 < top_p <= 1:
            self._fail(prefix + "top_p", "must be in (0, 1]", "Use 1.0 to disable nucleus filtering.")
        if min_p is not None and not 0 <= min_p < 1:
            self._fail(prefix + "min_p", "must be in [0, 1)", "Use 0.0 to disable min-p filtering.")

    def _check_relations(self) -> None:
        if self.max_think_tokens is not None and self.max_think_tokens >= self.max_new_tokens:
            raise SoftthinkConfigError(
                f"decode.max_think_tokens ({self.max_think_tokens}) must be < max_new_tokens ({self.max_new_tokens}) "
                "so that the answer has room. Raise max_new_tokens or lower max_think_tokens.",
                param="max_think_tokens",
                value=self.max_think_tokens,
            )
        rule = rule_class(self.mode)
        rule.validate_config(self)
        unused = rule.mode_fields_unused(self)
        if unused:
            warnings.warn(
                f"decode: {', '.join(unused)} {'has' if len(unused) == 1 else 'have'} no effect in mode "
                f"{self.mode!r}; remove {'it' if len(unused) == 1 else 'them'} or pick a mode that uses "
                f"{'it' if len(unused) == 1 else 'them'}.",
                stacklevel=4,
            )

    # -- derived -----------------------------------------------------------------------------------------------
    def answer_sampling(self) -> SamplingParams:
        """Sampling parameters of the answering phase (None fields fall back to the thinking ones)."""
        pick = lambda name: (
            getattr(self, name) if getattr(self, "answer_" + name) is None else getattr(self, "answer_" + name)
        )
        return SamplingParams(*(pick(n) for n in ("do_sample", "temperature", "top_k", "top_p", "min_p")))

    def think_sampling(self) -> SamplingParams:
        """Sampling parameters of the thinking phase."""
        return SamplingParams(self.do_sample, self.temperature, self.top_k, self.top_p, self.min_p)

    def replace(self, **overrides: Any) -> DecodeConfig:
        """A validated copy with some fields changed; unknown names raise with suggestions."""
        _check_keys(overrides, source=None)
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        """The fully resolved config, as written beside every run's outputs."""
        return dataclasses.asdict(self)

    def identity_dict(self) -> dict[str, Any]:
        """`to_dict` without the rule params marked `RuleParam.omitted_at_default` and the fields of
        `FIELDS_OMITTED_AT_DEFAULT` that hold their default: what identifies a decode setting in stored results (an
        eval cell's hash), stable when new modes and fields are added."""
        values = self.to_dict()
        for param in registered_params():
            if param.omitted_at_default and values.get(param.name) == param.default:
                del values[param.name]
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for name in FIELDS_OMITTED_AT_DEFAULT:
            if values.get(name) == defaults[name]:
                del values[name]
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, source: str | None = None) -> DecodeConfig:
        """Build from a mapping (e.g. a YAML preset); unknown keys raise naming ``source``."""
        _check_keys(values, source)
        try:
            return cls(**values)
        except SoftthinkConfigError as err:
            if source:
                raise SoftthinkConfigError(f"{err} (in {source})", param=err.param, value=err.value) from None
            raise


@dataclass(frozen=True)
class SamplingParams:
    """One phase's discrete sampling parameters."""

    do_sample: bool
    temperature: float
    top_k: int
    top_p: float
    min_p: float


def _positive_int(config: DecodeConfig, name: str, remedy: str) -> None:
    value = getattr(config, name)
    if not positive_int(value):
        raise SoftthinkConfigError(
            f"decode.{name} must be an int >= 1, got {value!r}. {remedy}", param=name, value=value
        )


def config_field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(DecodeConfig)]


def _check_keys(values: dict[str, Any], source: str | None) -> None:
    check_keys(values, config_field_names(), what="decode option", source=source)


# --- the rules' fields ------------------------------------------------------------------------------------------
_CORE_FIELDS = dataclasses.fields(DecodeConfig)


def _add_rule_fields() -> None:
    """Re-derive `DecodeConfig` as a dataclass of its core fields plus one field per registered `RuleParam`
    (inserted before the output fields), so that ``DecodeConfig(max_topk=5)``, ``dataclasses.fields``,
    ``replace`` and ``to_dict`` see every mode's knobs, including those of modes registered later.
    Called by the rule registry (`on_params_changed`) whenever the declared params change."""
    params = {p.name: (p.type, field(default=p.default, metadata={"help": p.help})) for p in registered_params()}
    at = next(i for i, f in enumerate(_CORE_FIELDS) if f.name == "stop_strings")
    specs = {
        **{f.name: (f.type, f) for f in _CORE_FIELDS[:at]},
        **params,
        **{f.name: (f.type, f) for f in _CORE_FIELDS[at:]},
    }
    for name in [*DecodeConfig.__dataclass_fields__, "__init__", "__repr__", "__eq__", "__hash__", "__match_args__"]:
        if name in DecodeConfig.__dict__:
            delattr(DecodeConfig, name)  # dataclass() only adds what the class does not define itself
    DecodeConfig.__annotations__ = {name: annotation for name, (annotation, _) in specs.items()}
    for name, (_, spec) in specs.items():
        setattr(DecodeConfig, name, spec)
    dataclass(DecodeConfig)


on_params_changed(_add_rule_fields)


# --- presets --------------------------------------------------------------------------------------------------
def preset_dirs() -> list[Path]:
    """Where named presets are looked up: $SOFTTHINK_CONFIG_DIR/decode, then the bundled configs/decode (source
    tree or installed package, `softthink.resources.bundled_config_dir`)."""
    dirs = []
    if os.environ.get("SOFTTHINK_CONFIG_DIR"):
        dirs.append(Path(os.environ["SOFTTHINK_CONFIG_DIR"]) / "decode")
    dirs.append(bundled_config_dir("decode"))
    return dirs


def available_presets() -> list[str]:
    """Names of the decode presets found in `preset_dirs()`."""
    return sorted({p.stem for d in preset_dirs() if d.is_dir() for p in d.glob("*.yaml")})


def load_decode_config(name_or_path: str | os.PathLike, **overrides: Any) -> DecodeConfig:
    """Load a preset by name (``"soft"``) or from a YAML path, then apply ``overrides``.

    A preset may say ``include: other_preset`` (a preset name, or a YAML path relative to the including file) to
    start from another preset and change only some keys (`softthink.config_io.read_config`).
    """
    values = read_config(_preset_path(str(name_or_path)), what="decode preset", locate=_locate_include)
    values.update(overrides)
    return DecodeConfig.from_dict(values, source=str(name_or_path))


def _preset_path(name_or_path: str) -> Path:
    path = Path(name_or_path).expanduser()
    if path.suffix in (".yaml", ".yml") or os.sep in name_or_path:
        if not path.is_file():  # a path, not a preset name: say so rather than "unknown preset"
            raise SoftthinkConfigError(
                f"decode preset file {name_or_path} does not exist. Check the path, or pass a preset name: "
                f"{', '.join(available_presets())}.",
                param="preset",
                value=name_or_path,
            )
        return path
    found = [c for c in (d / f"{name_or_path}.yaml" for d in preset_dirs()) if c.is_file()]
    if not found:
        raise SoftthinkConfigError(
            f"{unknown_name_message('decode preset', name_or_path, available_presets())} "
            f"Pass a YAML file path or a name found in {', '.join(str(d) for d in preset_dirs())}.",
            param="preset",
            value=name_or_path,
        )
    return found[0]


def _locate_include(name: str, including: Path) -> Path:
    """``include:`` of a preset: a YAML path relative to the including file, or a preset name."""
    if name.endswith((".yaml", ".yml")):
        return relative_to_including_file(name, including)
    return _preset_path(name)
