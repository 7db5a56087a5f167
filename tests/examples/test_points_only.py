"""examples/points_only.py runs as a user would run it, on a fresh SQLite file, and says what it did."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "points_only.py"


def test_points_only_runs_and_prints_each_step(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NGO_KIT_")}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[0] == f"database {tmp_path / 'points_only.db'}: modules points, registration"
    assert "registered Li Hua: balance 20 (welcome bonus)" in out
    assert "Li Hua tipped Zhang Wei 15 points" in out
    assert "Li Hua redeemed Sticker pack: 40 points, requested" in out
    assert "Zhang Wei cannot redeem yet: Not enough points: 40 asked for, balance is 35." in out
    board = out[out.index("leaderboard (this month):") + 1 :][:3]
    assert [line.split()[-1] for line in board] == ["170", "80", "20"]
    statement = out[out.index("statement of Li Hua (newest first):") + 1 :][:5]
    assert [line.split()[0] for line in statement] == [
        "redeem",
        "transfer",
        "award",
        "award",
        "award",
    ]
    assert statement[0].split()[3] == "115"  # the retried award of PR #103 counted once
    assert out[-1] == "ledger verified: intact"
    assert (tmp_path / "points_only.db").exists()
