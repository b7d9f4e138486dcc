"""The adapters are optional: the core imports and works without their packages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# Each listed package made unimportable (None in sys.modules), then the core is used.
WITHOUT = """
import sys
for name in ("agents", "langchain_core", "prometheus_client"):
    sys.modules[name] = None
import ledger, ledger.aio, ledger.cli, ledger.integrations
with ledger.Ledger.open("sqlite:///" + sys.argv[1]) as opened:
    sid = opened.ensure_session("k")
    opened.append_message(sid, "user", "hi")
    assert opened.transcript(sid)[0].content == "hi"
for adapter in ("agents", "langchain"):
    try:
        __import__("ledger.integrations." + adapter)
    except ImportError:
        pass
    else:
        raise AssertionError(adapter + " imported without its package")
print("ok")
"""


def test_the_core_needs_no_adapter_package(tmp_path: Path) -> None:
    """With openai-agents, langchain-core and prometheus-client hidden, ``ledger`` (and its
    CLI) imports and stores a message; importing an adapter is an ImportError."""
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT, f"{tmp_path}/ledger.db"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
