"""The center's credential cache (agent_kit/center/runtime.py): a workstation's secret stays
cached; a retirement made elsewhere (another process, the CLI, straight in the database) is
swept out within AUTH_CACHE_S; one made through this process is forgotten at once."""

from __future__ import annotations

import time

from agent_kit.center.runtime import AUTH_CACHE_S, build_runtime
from agent_kit.center.settings import CenterSettings
from agent_kit.center.store import Store


def test_a_retirement_made_elsewhere_is_swept_out_of_the_cache(tmp_path):
    settings = CenterSettings(db_url=f"sqlite:///{tmp_path / 'center.db'}",
                              data_dir=str(tmp_path))
    rt = build_runtime(settings)
    try:
        token, _, _ = rt.store.create_token(2, 3600, None, time.time())
        a, _ = rt.store.enroll(token, "a", None, time.time()) or ("", "")
        b, _ = rt.store.enroll(token, "b", None, time.time()) or ("", "")
        secret_a, retired = rt.agent_auth(a)
        assert not retired and rt.cached_agent_auth(a) == (secret_a, False)
        rt.agent_auth(b)
        assert not rt.sweep_due()              # not before AUTH_CACHE_S

        other = Store(rt.db)                   # "another process" retires a
        other.retire(a, time.time())
        assert rt.cached_agent_auth(a) == (secret_a, False)   # still cached: not yet swept

        rt._swept_at = time.monotonic() - AUTH_CACHE_S - 1
        assert rt.sweep_due() and not rt.sweep_due()          # claimed once
        rt.sweep_retired()
        assert rt.cached_agent_auth(a) is None                # swept out
        assert rt.cached_agent_auth(b) is not None            # the others stay
        assert rt.agent_auth(a) == (secret_a, True)           # looked up again: retired
        assert not rt.sweep_due()
    finally:
        rt.db.close()
