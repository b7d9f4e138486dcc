"""``examples/gateway.py`` runs as two OS processes on one database, on both backends, and no
reply is ever made from another session's history."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from ledger import Ledger
from projections.rebuild import verify
from projections.sessions import SessionsProjection

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gateway.py"
REPLY = re.compile(r"\[(.+?)\] you said '(.+)' \(\d+ user turns here\)")


def test_two_gateway_processes_share_the_chats_without_mixing_sessions(migrated_url: str) -> None:
    command = [sys.executable, str(EXAMPLE), "--url", migrated_url, "--chats", "3"]
    runs = [
        subprocess.Popen(
            [*command, "--name", name, "--turns", "12", "--seed", str(seed)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for seed, name in enumerate(("a", "b"))
    ]
    reports = []
    for run in runs:
        out, _ = run.communicate(timeout=300)
        assert run.returncode == 0
        reports.append(json.loads(out))
    with Ledger.open(migrated_url) as ledger:
        for report in reports:
            assert report["replies"]
            assert 1 <= report["builds"] <= len(report["replies"])
            for turn in report["replies"]:
                session_id, user = turn["session_id"], turn["user"]
                quoted = re.fullmatch(
                    r"\[(.+?)\] you said '(.+)' \(\d+ user turns here\)", turn["reply"]
                )
                assert quoted is not None
                assert quoted.group(1) == session_id
                own = {m.content for m in ledger.transcript(session_id, include_retracted=True)}
                assert quoted.group(2) in own  # answered from this session's own history
                assert user in own
        assert verify(ledger.store, SessionsProjection()) == []
