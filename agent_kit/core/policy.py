"""Call standards: load, validate and merge the TOML policy.

The default policy ships in ``agent_kit/core/policies/default.toml``. A file given with ``--policy``
is merged over it: IT can override a few thresholds and keep the rest. Every problem is raised as
``PolicyError`` naming the file, the line (where TOML tells it) or key, and what is wrong.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from agent_kit.core.checks import BY_ID, NETWORK_HOPS, CheckSpec, ParamSpec
from agent_kit.core.i18n import N_, current_language, translation

SCHEMA_VERSION = 1
# The shipped policy's name (policies/default.toml), translated where shown; a policy IT wrote
# keeps its own name.
DEFAULT_POLICY_NAME = N_("agent-kit default call standards")


def policy_title(name: str, lang: str | None = None) -> str:
    """A policy's name in ``lang`` (default: the current language) when it is the shipped one."""
    return translation(lang or current_language()).gettext(name) \
        if name == DEFAULT_POLICY_NAME else name

# Settings outside the per-check tables, by section. Probe groups add their keys here.
SECTIONS: dict[str, dict[str, ParamSpec]] = {
    "path": {
        "duration_s": ParamSpec((int, float), doc="length of the path test, seconds"),
        "packet_interval_ms": ParamSpec((int, float), doc="packet spacing; 20 ms for G.711"),
        "traceroute": ParamSpec(bool, doc=f"trace the hops to the center ({NETWORK_HOPS.id}); "
                                "needs raw-socket privileges"),
    },
    "bandwidth": {
        "max_duration_s": ParamSpec((int, float), doc="upper bound of the whole bandwidth phase"),
        "streams": ParamSpec(int, doc="parallel TCP streams"),
    },
    "audio": {
        "quiet_s": ParamSpec((int, float), doc="seconds of silence captured for the noise floor"),
        "speech_s": ParamSpec((int, float), doc="seconds of speech captured for the level"),
    },
    "gate": {
        "window": ParamSpec(int, doc="samples kept per check for hysteresis"),
        "fail_to_block": ParamSpec(int, doc="failing samples in the window that close the gate"),
        "pass_to_open": ParamSpec(int, doc="consecutive passing samples that reopen it"),
        "block_after_s": ParamSpec((int, float), doc="a failure persisting this long closes "
                                   "the gate, whatever the sample count"),
        "reopen_after_s": ParamSpec((int, float), doc="the passing samples that reopen it "
                                    "must span at least this long"),
        "shift_gap_s": ParamSpec((int, float), doc="a gap between measurements longer than "
                                 "this starts a new shift: a fresh full check is needed"),
        "center_unreachable": ParamSpec(str, ("local", "deny"), doc="agent-kit login when the "
                                        "center cannot be reached: local = trust the local "
                                        "gate alone, deny = refuse"),
        "local_login_max_s": ParamSpec((int, float), doc="with center_unreachable = local, "
                                       "the local gate alone may start the softphone only "
                                       "this long after the last clearance from the center"),
    },
}

_TOP_KEYS = {"schema", "name", "version", "checks", *SECTIONS}


class PolicyError(Exception):
    """An unreadable or invalid policy. ``str()`` is the one line a user sees."""

    def __init__(self, source: str, where: str | None, what: str) -> None:
        self.source, self.where, self.what = source, where, what
        super().__init__(f"{source}: {where}: {what}" if where else f"{source}: {what}")


@dataclass(frozen=True)
class CheckPolicy:
    """Thresholds of one check. ``None`` for a level means that level is never raised."""

    warn: float | None
    fail: float | None
    unknown_blocks: bool
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Policy:
    name: str
    version: str
    source: str
    checks: dict[str, CheckPolicy]
    settings: dict[str, dict[str, Any]]

    def check(self, check_id: str) -> CheckPolicy:
        return self.checks[check_id]

    def setting(self, section: str, key: str, default: Any) -> Any:
        return self.settings.get(section, {}).get(key, default)


def default_policy_text() -> str:
    return resources.files("agent_kit.core.policies").joinpath("default.toml").read_text("utf-8")


def load_policy(path: str | Path | None = None) -> Policy:
    """The default policy, with the file at ``path`` (if any) merged over it."""
    if path is None:
        return load_policy_layers(())
    source = str(path)
    try:
        text = Path(path).read_text("utf-8")
    except FileNotFoundError:
        raise PolicyError(source, None, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(source, None, f"cannot read: {exc}") from None
    return load_policy_layers(((text, source),))


def load_policy_layers(layers: Sequence[tuple[str, str]]) -> Policy:
    """The default policy with each ``(toml_text, source)`` layer merged over it in order (the
    center's fleet policy, then a team's override): a layer sets only what it names. Each layer
    is validated alone, then the merge as a whole; a problem names the layer's source."""
    default_text = default_policy_text()
    merged = _parse(default_text, "default policy")
    _validate(merged, "default policy", default_text, require_all=True)
    source = "default policy"
    for text, source in layers:
        override = _parse(text, source)
        _validate(override, source, text, require_all=False)
        merged = _merge(merged, override)
        _validate(merged, source, text, require_all=True)
    return _build(merged, source)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``: top-level keys replaced, each check's and each section's
    table merged key by key."""
    merged = dict(base)
    merged.update({k: v for k, v in override.items() if k not in ("checks", *SECTIONS)})
    merged["checks"] = {**base["checks"]}
    for check_id, table in override.get("checks", {}).items():
        merged["checks"][check_id] = {**base["checks"].get(check_id, {}), **table}
    for section in SECTIONS:
        if section in override:
            merged[section] = {**base.get(section, {}), **override[section]}
    return merged


def parse_policy_text(text: str, source: str = "<policy>") -> Policy:
    """A complete policy from TOML text (no merging); used by tests and the center."""
    data = _parse(text, source)
    _validate(data, source, text, require_all=True)
    return _build(data, source)


def _parse(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line L, column C)"
        raise PolicyError(source, None, f"not valid TOML: {exc}") from None


def _line_of(text: str, check_id: str | None, key: str | None, section: str | None = None) -> str:
    """Best-effort 'line N' for a key, so a user can find it; the key path is always given."""
    lines = text.splitlines()
    start = 0
    if check_id is not None or section is not None:
        header = (
            re.compile(r'^\s*\[\s*checks\s*\.\s*"?' + re.escape(check_id) + r'"?\s*\]')
            if check_id is not None
            else re.compile(r"^\s*\[\s*" + re.escape(section or "") + r"\s*\]")
        )
        for i, line in enumerate(lines):
            if header.match(line):
                start = i
                if key is None:
                    return f"line {i + 1}"
                break
        else:
            return ""
    if key is not None:
        pat = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
        for i in range(start, len(lines)):
            if i > start and lines[i].lstrip().startswith("[") and (check_id or section):
                break
            if pat.match(lines[i]):
                return f"line {i + 1}"
    return ""


def _where(text: str, path: str, check_id: str | None = None, key: str | None = None,
           section: str | None = None) -> str:
    line = _line_of(text, check_id, key, section)
    return f"{line}, key {path}" if line else f"key {path}"


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_type(value: Any, spec: ParamSpec) -> str | None:
    types = spec.type if isinstance(spec.type, tuple) else (spec.type,)
    if isinstance(value, bool) and bool not in types:
        return f"must be {_type_names(types)}, not true/false"
    if not isinstance(value, types):
        return f"must be {_type_names(types)}, not {type(value).__name__}"
    if spec.choices and value not in spec.choices:
        return f"must be one of {', '.join(repr(c) for c in spec.choices)}, not {value!r}"
    if spec.bounds is not None and not spec.bounds[0] <= value <= spec.bounds[1]:
        return f"must be {spec.bounds[0]:g}..{spec.bounds[1]:g}, not {value!r}"
    if isinstance(value, list) and not all(isinstance(v, str) for v in value):
        return "must be a list of strings"
    return None


def _type_names(types: tuple[type, ...]) -> str:
    names = {int: "a whole number", float: "a number", str: "a string", list: "a list",
             bool: "true or false"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def _validate(data: dict[str, Any], source: str, text: str, *, require_all: bool) -> None:
    for key in data:
        if key not in _TOP_KEYS:
            raise PolicyError(source, _where(text, key, key=key), f"unknown key {key!r} "
                              f"(known: {', '.join(sorted(_TOP_KEYS))})")
    if "schema" in data and data["schema"] != SCHEMA_VERSION:
        raise PolicyError(source, _where(text, "schema", key="schema"),
                          f"schema {data['schema']!r} is not supported (this agent reads "
                          f"schema {SCHEMA_VERSION})")
    for key in ("name", "version"):
        if key in data and not isinstance(data[key], str):
            raise PolicyError(source, _where(text, key, key=key), "must be a string")
        if require_all and key not in data:
            raise PolicyError(source, None, f"missing top-level key {key!r}")
    for section, specs in SECTIONS.items():
        table = data.get(section, {})
        if not isinstance(table, dict):
            raise PolicyError(source, _where(text, section, key=section), "must be a table")
        for key, value in table.items():
            where = _where(text, f"{section}.{key}", key=key, section=section)
            if key not in specs:
                raise PolicyError(source, where, f"unknown key (known: {', '.join(specs)})")
            problem = _check_type(value, specs[key])
            if problem:
                raise PolicyError(source, where, problem)
            if _is_number(value) and value <= 0:
                raise PolicyError(source, where, "must be greater than 0")
    gate = data.get("gate", {})
    if require_all and isinstance(gate.get("window"), int) \
            and isinstance(gate.get("fail_to_block"), int) \
            and gate["fail_to_block"] > gate["window"]:
        # the monitor's hysteresis cannot count more failing samples than its window holds
        raise PolicyError(source, _where(text, "gate.fail_to_block", key="fail_to_block",
                                         section="gate"),
                          f"must not exceed gate.window ({gate['window']}), not "
                          f"{gate['fail_to_block']}")
    checks = data.get("checks", {})
    if not isinstance(checks, dict):
        raise PolicyError(source, _where(text, "checks", key="checks"), "must be a table")
    for check_id, table in checks.items():
        spec = BY_ID.get(check_id)
        if spec is None:
            raise PolicyError(source, _where(text, f'checks."{check_id}"', check_id=check_id),
                              f"unknown check id {check_id!r} (see docs/policy.md)")
        if not isinstance(table, dict):
            raise PolicyError(source, _where(text, f'checks."{check_id}"', check_id=check_id),
                              "must be a table")
        _validate_check(spec, table, source, text, require_all=require_all)
    if require_all:
        missing = [s.id for s in BY_ID.values() if s.id not in checks]
        if missing:
            raise PolicyError(source, None, f"no thresholds for {', '.join(missing)}")


def _validate_check(spec: CheckSpec, table: dict[str, Any], source: str, text: str,
                    *, require_all: bool) -> None:
    def where(key: str) -> str:
        return _where(text, f'checks."{spec.id}".{key}', check_id=spec.id, key=key)

    for key, value in table.items():
        if key in ("warn", "fail"):
            if not spec.has_thresholds:
                raise PolicyError(source, where(key), f"{spec.id} is judged by state, it takes "
                                  f"no {key} level (keys: {', '.join(spec.params) or 'none'})")
            if value != "none" and not _is_number(value):
                raise PolicyError(source, where(key), f"must be a number or \"none\", "
                                  f"not {value!r}")
        elif key == "unknown_blocks":
            if not isinstance(value, bool):
                raise PolicyError(source, where(key), f"must be true or false, not {value!r}")
        elif key in spec.params:
            problem = _check_type(value, spec.params[key])
            if problem:
                raise PolicyError(source, where(key), problem)
        else:
            known = ["warn", "fail"] if spec.has_thresholds else []
            known += ["unknown_blocks", *spec.params]
            raise PolicyError(source, where(key),
                              f"unknown key {key!r} for {spec.id} (known: {', '.join(known)})")
    warn, fail = _level(table.get("warn")), _level(table.get("fail"))
    if warn is not None and fail is not None:
        worse = fail < warn if spec.direction == "higher_is_worse" else fail > warn
        if worse:
            rel = "above" if spec.direction == "higher_is_worse" else "below"
            raise PolicyError(source, where("fail"),
                              f"fail ({fail}) must not be {'below' if rel == 'above' else 'above'}"
                              f" warn ({warn}): for {spec.id} {rel} is worse")
    if require_all and spec.has_thresholds and "warn" not in table and "fail" not in table:
        raise PolicyError(source, where("warn"), f"{spec.id} needs a warn or fail level")


def _level(value: Any) -> float | None:
    return None if value is None or value == "none" else float(value)


def _build(data: dict[str, Any], source: str) -> Policy:
    checks: dict[str, CheckPolicy] = {}
    for check_id, table in data["checks"].items():
        params = {k: v for k, v in table.items() if k not in ("warn", "fail", "unknown_blocks")}
        checks[check_id] = CheckPolicy(
            warn=_level(table.get("warn")),
            fail=_level(table.get("fail")),
            unknown_blocks=bool(table.get("unknown_blocks", False)),
            params=params,
        )
    settings = {section: dict(data.get(section, {})) for section in SECTIONS}
    return Policy(name=data["name"], version=data["version"], source=source, checks=checks,
                  settings=settings)
