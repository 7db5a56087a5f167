"""``tx.points``: the points ledger, earning rules, rewards, expiry, levels, badges, leaderboards.

How the ledger stays exact:

* every operation inserts one ``points_txn`` row first; with a ``key`` that insert is an
  INSERT-or-nothing on ``(org_id, key)``, so a retry (or a racing twin) writes nothing more and
  returns the first result;
* account balances change by UPDATEs in ascending account-id order (one lock order for every
  operation, so PostgreSQL never deadlocks), member debits guarded by ``balance >= :n``;
* then the entries are appended to the organisation's ``points`` hash chain, then the audit
  row. Entries of one operation sum to zero.

Each part lives in the file named for what it manages, and ``PointsService`` composes them:
``ledger.py`` (award, deduct, transfer, reverse, expire, settings), ``posting.py`` (the posting
engine the above rest on), ``rules.py``, ``rewards.py`` (catalogue, redemptions, fulfilment),
``recognition.py`` (levels, badges, Open Badges) and ``standings.py`` (balances, statements,
leaderboards, export, personal data). What they share is in ``base.py``, the module's errors in
``errors.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ngo_kit.modules.points.base import CHAIN
from ngo_kit.modules.points.errors import (
    LimitReached,
    NotReversible,
    RewardUnavailable,
    TransfersDisabled,
    WrongStatus,
)
from ngo_kit.modules.points.ledger import Ledger
from ngo_kit.modules.points.recognition import Recognition
from ngo_kit.modules.points.rewards import Rewards
from ngo_kit.modules.points.rules import BUILTIN_RULE_TYPES, Rules, RuleType, rule_types
from ngo_kit.modules.points.standings import Standings

if TYPE_CHECKING:
    from ngo_kit.context import Context


class PointsService(Ledger, Rules, Rewards, Recognition, Standings):
    """``tx.points``: award, deduct, transfer, reverse, redeem, expire, rules, recognition."""


def seed_organisation(tx: Context) -> None:
    """Open the organisation's system accounts (called when an organisation is created)."""
    PointsService(tx)._system_accounts()


__all__ = [
    "BUILTIN_RULE_TYPES",
    "CHAIN",
    "LimitReached",
    "NotReversible",
    "PointsService",
    "RewardUnavailable",
    "RuleType",
    "TransfersDisabled",
    "WrongStatus",
    "rule_types",
    "seed_organisation",
]
