"""``agent-center``'s admin subcommands on SQLite: a wrong data dir is an error, tokens list."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def center(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent_kit.center.cli", *args],
                          capture_output=True, text=True, timeout=120)


def test_admin_subcommands_refuse_a_data_dir_without_a_database(tmp_path: Path):
    for args in (["agents"], ["token", "create"], ["token", "list"], ["retire", "ws-x"]):
        run = center(*args, "--data-dir", str(tmp_path / "typo"))
        assert run.returncode == 2, (args, run.stderr)
        assert run.stdout == "" and run.stderr.count("\n") == 1
        assert "no center database at" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "typo" / "center.db").exists()


def test_token_list_shows_uses_state_and_expiry(tmp_path: Path):
    subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                    "from agent_kit.center.cli import _store; "
                    "_store(None, Path(sys.argv[1]), create=True)", str(tmp_path)],
                   check=True, timeout=120)
    made = center("token", "create", "--data-dir", str(tmp_path), "--uses", "3",
                  "--note", "wave 3")
    assert made.returncode == 0 and made.stdout.startswith("enr_")
    listed = center("token", "list", "--data-dir", str(tmp_path))
    assert listed.returncode == 0
    (line,) = listed.stdout.splitlines()
    assert "0/3" in line and "active" in line and "expires 20" in line and "wave 3" in line
    assert made.stdout.strip() not in listed.stdout  # the token itself is shown once only


def test_serve_refuses_bad_options_in_one_line_without_a_traceback(tmp_path: Path):
    import socket

    bad_rule = tmp_path / "bad-rule.toml"
    bad_rule.write_text('[[rule]]\nname = "x"\nkind = "offlien"\n')
    no_secret = tmp_path / "no-secret.toml"
    no_secret.write_text('[[channel]]\nname = "chat"\nkind = "chat"\n'
                         'url_env = "AK_TEST_NO_SUCH_VAR"\n')

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        base = ["serve", "--data-dir", str(tmp_path), "--udp-port", "0"]
        cases = [
            (["--port", port], "cannot listen on 127.0.0.1:" + port),
            (["--port", "99999"], "--port"),
            (["--workers", "0"], "--workers"),
            (["--heartbeat-interval", "0"], "--heartbeat-interval"),
            (["--webhook", "alerts.example"], "must be an http:// or https:// URL"),
            (["--alerts", str(tmp_path / "none.toml")], "invalid alerts: cannot read"),
            (["--alerts", str(bad_rule)], "rule 'x': kind: one of offline"),
            (["--alerts", str(no_secret)], "the environment variable AK_TEST_NO_SUCH_VAR"),
            (["--tls-cert", str(tmp_path / "no.pem"), "--tls-key", str(tmp_path / "no.key")],
             "cannot use --tls-cert"),
        ]
        for extra, reason in cases:
            run = center(*base, *extra)
            assert run.returncode == 2, (extra, run.stderr)
            assert run.stderr.count("\n") == 1 and reason in run.stderr, (extra, run.stderr)
