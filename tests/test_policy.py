"""The call-standards policy: the shipped default is valid and every bad file is explained."""

from __future__ import annotations

import pytest

from agent_kit.core.checks import CATALOGUE
from agent_kit.core.policy import PolicyError, default_policy_text, load_policy


def test_default_policy_has_every_check_with_a_source_comment():
    policy = load_policy()
    assert set(policy.checks) == {s.id for s in CATALOGUE}
    # every numeric threshold line carries a comment naming its source or "chosen"
    for line in default_policy_text().splitlines():
        if line.split("=")[0].strip() in ("warn", "fail"):
            assert "#" in line, f"threshold without a source: {line!r}"


def test_override_merges_over_default(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text('version = "site-7"\n[checks."network.jitter"]\nwarn = 10\n')
    policy = load_policy(f)
    assert policy.version == "site-7"
    assert policy.check("network.jitter").warn == 10
    assert policy.check("network.jitter").fail == 30  # kept from the default
    assert policy.check("network.rtt").warn == 100


def test_none_disables_a_level(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text('[checks."system.uptime"]\nwarn = "none"\n')
    rule = load_policy(f).check("system.uptime")
    assert rule.warn is None and rule.fail is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[checks."network.jitter"]\nwarn = 40\nfail = 30\n', "line 3, key checks.\"network.jitter\".fail: fail (30.0) must not be below warn (40.0)"),
        ('[checks."network.jitter"]\nwarn = "high"\n', 'line 2, key checks."network.jitter".warn: must be a number'),
        ('[checks."network.jiter"]\nwarn = 1\n', "unknown check id 'network.jiter'"),
        ('[checks."network.jitter"]\nwran = 1\n', "unknown key 'wran' for network.jitter"),
        ('[checks."vpn.connected"]\nmode = "sometimes"\n', "must be one of 'required', 'optional', 'off'"),
        ('[checks."vpn.connected"]\nwarn = 3\n', "judged by state"),
        ('[checks."audio.noise"]\nunknown_blocks = "yes"\n', "must be true or false"),
        ("schema = 2\n", "schema 2 is not supported"),
        ("colour = 1\n", "unknown key 'colour'"),
        ('[path]\nduration_s = -1\n', "line 2, key path.duration_s: must be greater than 0"),
        ('[path]\nduration_s = true\n', "not true/false"),
        ("name = \n", "not valid TOML"),
        ('[checks."network.rtt"]\nwarn = nan\n', "must be a number"),
    ],
)
def test_invalid_policy_names_where_and_what(tmp_path, text, expected):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(PolicyError) as err:
        load_policy(f)
    message = str(err.value)
    assert message.startswith(str(f)), message
    assert expected in message, message
    assert "\n" not in message


def test_toml_syntax_error_gives_the_line(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text('name = "x"\n\n[checks."network.rtt"\nwarn = 1\n')
    with pytest.raises(PolicyError, match=r"line 3"):
        load_policy(f)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(PolicyError, match="file not found"):
        load_policy(tmp_path / "nope.toml")
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "bin.toml")
