"""A writer that runs until it is killed; used by test_crash.py (run as a subprocess).

Each unit of work writes several rows that belong together (three audit rows sharing one batch
id and an outbox message), so a partial unit would be visible after a crash.
"""

from __future__ import annotations

import os
import sys

from ngo_kit import SYSTEM, Kit
from ngo_kit.testing import settings_for_tests


def main(url: str) -> None:
    kit = Kit(
        settings=settings_for_tests(url, outbox_dispatch_after_commit=False),
        modules=[],
        autoload=False,
    )
    n = 0
    while True:
        n += 1
        batch = f"{os.getpid()}-{n}"
        with kit.begin(org="crash", actor=SYSTEM) as tx:
            for part in range(3):
                tx.audit(
                    "crash.part",
                    "batch",
                    batch,
                    f"part {part} of batch {batch}",
                    data={"batch": batch},
                )
            tx.send("email", f"batch{batch}@example.org", body=f"batch {batch}")
        print(n, flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
