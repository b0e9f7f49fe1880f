"""Teams (or sites): the group a workstation belongs to, named by the center's IT.

A team name is an id, not a display text: 1 to 40 characters of lowercase ASCII letters, digits,
``.``, ``_`` and ``-``, starting with a letter or digit (``tokyo-1``, ``support.evening``). It
goes into URLs (``?team=``), CSV cells and role grants unchanged, and two spellings of one team
("Tokyo", "tokyo") cannot exist. A workstation gets its team from the enrollment token it used
(``enrollment_tokens.team``); an admin may move it later (``PATCH /api/v1/agents/{id}``).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

TEAM_MAX_CHARS = 40
TEAM_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,39}$"
_TEAM = re.compile(TEAM_PATTERN)


def team_refusal(name: str) -> str | None:
    """Why ``name`` cannot be a team name (one sentence), or None when it can."""
    if not name:
        return "a team name is empty"
    if len(name) > TEAM_MAX_CHARS:
        return f"a team name has at most {TEAM_MAX_CHARS} characters"
    if _TEAM.fullmatch(name) is None:
        return ("a team name is lowercase letters a-z, digits and . _ - (starting with a "
                "letter or digit)")
    return None


def _valid_team(name: str) -> str:
    reason = team_refusal(name)
    if reason is not None:
        raise ValueError(reason)
    return name


# A team name in a request body or query (a 422 that says what a team name is, otherwise).
TeamName = Annotated[str, AfterValidator(_valid_team)]
