"""Take just what you need: contributor rewards with only the registration and points modules.

An open-source community (use case 4) gives newcomers a welcome bonus, awards points for merged
work, lets members tip each other, and has a reward to redeem. Run it with
``python examples/points_only.py [DIRECTORY]``: it uses a fresh SQLite file in DIRECTORY
(default: a new temporary directory) and prints what it does.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from ngo_kit import SYSTEM, InsufficientPoints, Kit, KitSettings


def main(directory: Path) -> None:
    database = directory / "points_only.db"
    database.unlink(missing_ok=True)
    # Verification emails wait in the outbox for a worker instead of printing to the console.
    settings = KitSettings(outbox_dispatch_after_commit=False)
    kit = Kit(f"sqlite:///{database}", modules=["registration", "points"], settings=settings)
    kit.upgrade()
    org = kit.create_organisation("open-kit", "Open Kit Community", timezone="Asia/Shanghai")
    print(f"database {database}: modules {', '.join(kit.modules)}")

    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.points.configure(transfers_allowed=True)
        tx.points.add_rule(name="welcome", rule_type="welcome_bonus", points=20)
        tx.points.add_rule(name="merged", rule_type="manual", points=0, cap_week=500)
        sticker = tx.points.add_reward(code="stickers", name="Sticker pack", price=40, stock=50)

    members = {}
    for name in ("Li Hua", "Wang Fang", "Zhang Wei"):
        with kit.begin(org=org) as tx:  # people sign themselves up; the welcome rule fires
            email = name.lower().replace(" ", ".") + "@example.org"
            user = tx.registration.register(email=email, display_name=name)
            members[name] = user.id
        with kit.begin(org=org, actor=user.id) as tx:  # a member sees their own balance
            print(f"registered {name}: balance {tx.points.balance(user.id)} (welcome bonus)")
    li, wang, zhang = members.values()

    with kit.begin(org=org, actor=SYSTEM) as tx:  # a maintainer awards merged work
        for member, points, pr in ((li, 120, 101), (wang, 60, 102), (li, 30, 103)):
            tx.points.award(
                member, points, reason=f"PR #{pr} merged", rule="merged", key=f"pr:{pr}"
            )
            print(f"awarded {points} for PR #{pr}")
        tx.points.award(li, 30, reason="PR #103 merged", rule="merged", key="pr:103")  # a retry

    with kit.begin(org=org, actor=li) as tx:  # members act for themselves
        tx.points.transfer(
            from_member=li, to_member=zhang, points=15, reason="thanks for the review"
        )
        print("Li Hua tipped Zhang Wei 15 points")
        redemption = tx.points.redeem(reward_id=sticker.id, member_id=li, key="li-stickers")
        print(f"Li Hua redeemed {sticker.name}: {redemption.points} points, {redemption.status}")
    with kit.begin(org=org, actor=zhang) as tx:
        try:
            tx.points.redeem(reward_id=sticker.id, member_id=zhang)
        except InsufficientPoints as refused:
            print(f"Zhang Wei cannot redeem yet: {refused.message}")

    with kit.begin(org=org, actor=SYSTEM) as tx:
        names = {uid: name for name, uid in members.items()}
        print("leaderboard (this month):")
        for row in tx.points.leaderboard("month"):
            print(f"  {row.rank}. {names[row.member_id]} {row.points}")
        print("statement of Li Hua (newest first):")
        for entry in tx.points.statement(li):
            print(
                f"  {entry.kind:<9} {entry.amount:>5} -> {entry.balance_after:>4}  {entry.reason}"
            )
    problems = kit.verify()
    print(f"ledger verified: {problems or 'intact'}")
    kit.dispose()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="points_only_")))
