"""examples/audit_demo.py runs as a user would run it and shows verification naming a tampered row."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "audit_demo.py"


def test_audit_demo_verifies_the_chain_then_names_the_tampered_row() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NGO_KIT_")}
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert "verify: ok, the chain is whole" in out
    assert out[-1].startswith("verify: audit [org ")
    assert out[-1].endswith("was altered: its content no longer matches its hash")
