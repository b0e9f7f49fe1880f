"""The center's policy on the workstation: fetched, validated, cached for outages.

The center sends the workstation's effective policy as layers (the fleet's text, then its
team's override) to merge over the shipped default in order, with a tag
(``GET /api/v1/policy``). Each heartbeat acknowledgement names the tag the workstation should
run; the monitor fetches again when it differs from the one it runs
(:meth:`agent_kit.loop.monitor.Monitor.follow_center_policy`). A fetched policy is validated
with the same parser before it replaces the cached one, so a bad answer never replaces a good
cache; the cache (``center_policy.json`` in the state folder, the user's only) is what the
monitor starts with when the center cannot be reached, and what ``agent-kit login`` reads.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from agent_kit.core.policy import Policy, PolicyError, load_policy, load_policy_layers
from agent_kit.link.client import CenterClient
from agent_kit.link.private_files import write_private_file
from agent_kit.link.state_folder import state_dir
from agent_kit.loop.hysteresis import GateConfig

log = logging.getLogger("agent_kit.loop.center_policy")

CACHE_NAME = "center_policy.json"
LEGACY_CACHE_NAME = "center_policy.toml"   # one layer, written by agents before the tag


@dataclass(frozen=True)
class CenterPolicy:
    """The center's policy as this workstation applies it, and the center's tag for it."""

    policy: Policy
    tag: str | None


def cache_path() -> Path:
    """Where the center's policy is cached (``agent-kit login`` reads it too)."""
    return state_dir() / CACHE_NAME


def fetch_center_policy(client: CenterClient, cache: Path | None = None) -> CenterPolicy:
    """The center's policy for this workstation, validated, then cached. Raises
    ``CenterUnavailable``/``CenterRefused`` (no answer), ``PolicyError`` (an answer the parser
    or the gate's settings refuse: the cache is kept), ``OSError`` (the cache cannot be written)."""
    document = client.policy_document()
    policy = load_policy_layers(document.layers)     # validated before it is cached
    try:   # and by the gate's own rules, which the monitor applies it with
        GateConfig.from_policy(policy)
    except ValueError as exc:
        raise PolicyError("center policy", None, str(exc)) from None
    cache = cache or cache_path()
    fresh = cache.with_suffix(".new")
    write_private_file(fresh, json.dumps({
        "tag": document.tag,
        "layers": [{"toml": text, "source": source} for text, source in document.layers]}))
    os.replace(fresh, cache)
    return CenterPolicy(policy, document.tag)


def cached_center_policy(cache: Path | None = None) -> CenterPolicy | None:
    """The last center policy fetched (None when there is none or it cannot be used: said in
    the log)."""
    cache = cache or cache_path()
    try:
        data = json.loads(cache.read_text("utf-8"))
        layers = tuple((str(layer["toml"]), str(layer["source"])) for layer in data["layers"])
        tag = data.get("tag")
        return CenterPolicy(load_policy_layers(layers), tag if isinstance(tag, str) else None)
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError, PolicyError) as exc:
        log.warning("cached center policy not used (%s)", exc)
        return None
    legacy = cache.with_name(LEGACY_CACHE_NAME)
    if legacy.exists():
        try:
            return CenterPolicy(load_policy(legacy), None)
        except PolicyError as exc:
            log.warning("cached center policy not used (%s)", exc)
    return None
