"""Recognition: levels, badges (by threshold, by event count or by hand) and Open Badges
assertions."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa

from ngo_kit.db import new_id, utcnow
from ngo_kit.errors import AlreadyExists, NotFound, SelfActionRefused
from ngo_kit.modules.points.base import PointsBase, _chunks
from ngo_kit.modules.points.models import (
    MEMBER,
    PointsAccount,
    PointsBadge,
    PointsBadgeAward,
    PointsLevel,
    PointsRule,
    PointsSettings,
    PointsTxn,
)
from ngo_kit.modules.points.schemas import BadgeAwardRead, BadgeIn, BadgeRead, LevelIn, LevelRead
from ngo_kit.operations import operation
from ngo_kit.schemas import Prose, check, coerce


def _criteria_text(badge: PointsBadge) -> str:
    if badge.criteria == "threshold":
        return f"Earned at least {badge.threshold} points."
    if badge.criteria == "event_count":
        return f"{badge.event} at least {badge.threshold} times."
    return "Granted by the organisation."


class Recognition(PointsBase):
    """Levels, badges and badge assertions."""

    @operation("POST /levels", status=201, permission="points.configure", errors=(AlreadyExists,))
    def add_level(
        self, data: LevelIn | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> LevelRead:
        """Add a level at a lifetime-earned threshold (``points.configure``)."""
        spec = coerce(LevelIn, data, kwargs)
        self.tx.require("points.configure")
        values = {"id": new_id(), "org_id": self.tx.org_id, **spec.model_dump()}
        with self.tx.translate_integrity(AlreadyExists("Level", spec.name)):
            self.conn.execute(sa.insert(PointsLevel).values(values))
        self._need_recognition()
        self.tx.audit(
            "points.level_added",
            "points_level",
            values["id"],
            f"level {spec.name} at {spec.threshold}",
        )
        return LevelRead.model_validate(values)

    @operation("GET /levels")
    def levels(self) -> list[LevelRead]:
        """The organisation's levels, lowest first."""
        rows = self.session.scalars(
            sa.select(PointsLevel)
            .where(PointsLevel.org_id == self.tx.org_id)
            .order_by(PointsLevel.threshold)
        )
        return [LevelRead.model_validate(r) for r in rows]

    @operation("POST /badges", status=201, permission="points.configure", errors=(AlreadyExists,))
    def add_badge(
        self, data: BadgeIn | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> BadgeRead:
        """Define a badge (``points.configure``)."""
        spec = coerce(BadgeIn, data, kwargs)
        self.tx.require("points.configure")
        values = {
            "id": new_id(),
            "org_id": self.tx.org_id,
            "created_at": utcnow(),
            **spec.model_dump(),
        }
        with self.tx.translate_integrity(AlreadyExists("Badge", spec.code)):
            self.conn.execute(sa.insert(PointsBadge).values(values))
        if spec.criteria == "threshold":
            self._need_recognition()
        self.tx.audit(
            "points.badge_added", "points_badge", values["id"], f"badge {spec.code} added"
        )
        return BadgeRead.model_validate(values)

    @operation("GET /badges")
    def badges(self) -> list[BadgeRead]:
        """The organisation's badges."""
        rows = self.session.scalars(
            sa.select(PointsBadge)
            .where(PointsBadge.org_id == self.tx.org_id)
            .order_by(PointsBadge.code)
        )
        return [BadgeRead.model_validate(r) for r in rows]

    @operation(
        "POST /badges/{code}/awards",
        status=201,
        permission="points.award",
        errors=(SelfActionRefused,),
    )
    def grant_badge(self, code: str, member_id: uuid.UUID, *, evidence: str = "") -> BadgeAwardRead:
        """Award a badge by hand (``points.award``); granting a held badge returns the first award.

        Nobody grants themselves a badge unless the organisation allows self-action for
        ``points.award`` (``SelfActionRefused``).
        """
        self.tx.require_for("points.award", member_id)
        evidence = check("evidence", Prose, evidence)
        badge = self.session.scalar(
            sa.select(PointsBadge).where(
                PointsBadge.org_id == self.tx.org_id, PointsBadge.code == code
            )
        )
        if badge is None:
            raise NotFound("Badge", code)
        self._require_members([member_id], "member_id")
        # Lock the member's account first, as awards do, so the two never wait on each other.
        self.conn.execute(
            sa.select(PointsAccount.id)
            .where(
                PointsAccount.org_id == self.tx.org_id,
                PointsAccount.kind == MEMBER,
                PointsAccount.member_id == member_id,
            )
            .with_for_update()
        ).first()
        awarded = self._give_badge(
            badge.id, badge.code, member_id, {"evidence": evidence, "by": "manual"}
        )
        return awarded or self._badge_award(badge.id, member_id)

    @operation("GET /members/{member_id}/badges", permission="points.view", own=True)
    def member_badges(self, member_id: uuid.UUID) -> list[BadgeAwardRead]:
        """The badges a member holds, oldest first."""
        self._see(member_id)
        rows = self.conn.execute(
            sa.select(
                PointsBadgeAward.id,
                PointsBadgeAward.badge_id,
                PointsBadge.code,
                PointsBadgeAward.awarded_at,
            )
            .join(PointsBadge, PointsBadge.id == PointsBadgeAward.badge_id)
            .where(
                PointsBadgeAward.org_id == self.tx.org_id, PointsBadgeAward.member_id == member_id
            )
            .order_by(PointsBadgeAward.awarded_at, PointsBadgeAward.id)
        )
        return [
            BadgeAwardRead(id=i, badge_id=b, badge_code=c, member_id=member_id, awarded_at=a)
            for i, b, c, a in rows
        ]

    def _badge_award(self, badge_id: uuid.UUID, member_id: uuid.UUID) -> BadgeAwardRead:
        row = self.conn.execute(
            sa.select(PointsBadgeAward.id, PointsBadgeAward.awarded_at, PointsBadge.code)
            .join(PointsBadge, PointsBadge.id == PointsBadgeAward.badge_id)
            .where(
                PointsBadgeAward.org_id == self.tx.org_id,
                PointsBadgeAward.badge_id == badge_id,
                PointsBadgeAward.member_id == member_id,
            )
        ).one()
        return BadgeAwardRead(
            id=row[0], badge_id=badge_id, badge_code=row[2], member_id=member_id, awarded_at=row[1]
        )

    def _give_badge(
        self, badge_id: uuid.UUID, code: str, member_id: uuid.UUID, evidence: dict[str, Any]
    ) -> BadgeAwardRead | None:
        award_id, now = new_id(), utcnow()
        inserted = self._insert_new(
            PointsBadgeAward,
            {
                "id": award_id,
                "org_id": self.tx.org_id,
                "badge_id": badge_id,
                "member_id": member_id,
                "awarded_at": now,
                "evidence": evidence,
            },
        )
        if not inserted:
            return None
        read = BadgeAwardRead(
            id=award_id, badge_id=badge_id, badge_code=code, member_id=member_id, awarded_at=now
        )
        self.tx.audit(
            "points.badge_awarded",
            "points_badge",
            badge_id,
            f"badge {code} awarded",
            {"member": member_id, **evidence},
        )
        self.tx.emit("ngo_kit_badge_awarded", badge=read)
        return read

    def _need_recognition(self) -> None:
        """Mark that awards must now check levels and threshold badges."""
        self._ensure_settings()
        self.conn.execute(
            sa.update(PointsSettings)
            .where(PointsSettings.org_id == self.tx.org_id)
            .values(recognition=True)
        )

    def _recognise(self, earned: dict[uuid.UUID, int]) -> None:
        """After earning: levels crossed and threshold badges reached, for each member."""
        org_id = self.tx.org_id
        marks = self.conn.execute(
            sa.select(sa.literal("level"), PointsLevel.id, PointsLevel.name, PointsLevel.threshold)
            .where(PointsLevel.org_id == org_id)
            .union_all(
                sa.select(
                    sa.literal("badge"), PointsBadge.id, PointsBadge.code, PointsBadge.threshold
                ).where(PointsBadge.org_id == org_id, PointsBadge.criteria == "threshold")
            )
        ).all()
        if not marks:
            return
        totals: dict[uuid.UUID, int] = {}
        for chunk in _chunks(list(earned)):
            totals.update(
                self.conn.execute(
                    sa.select(PointsAccount.member_id, PointsAccount.earned).where(
                        PointsAccount.org_id == org_id,
                        PointsAccount.kind == MEMBER,
                        self._in(PointsAccount.member_id, chunk),
                    )
                ).all()
            )
        ordered = sorted(marks, key=lambda m: (int(m[3] or 0), m[0]))
        for member_id, points in earned.items():
            new = int(totals.get(member_id, 0))
            old = new - points
            for what, mark_id, name, threshold in ordered:
                if threshold is None or not old < int(threshold) <= new:
                    continue
                if what == "level":
                    self._emit(
                        "ngo_kit_level_reached",
                        member_id=member_id,
                        level=LevelRead(id=mark_id, name=name, threshold=int(threshold)),
                    )
                else:
                    self._give_badge(mark_id, name, member_id, {"by": "threshold", "earned": new})

    def _count_badges(self, member_id: uuid.UUID, event: str) -> None:
        badges = self.conn.execute(
            sa.select(PointsBadge.id, PointsBadge.code, PointsBadge.threshold).where(
                PointsBadge.org_id == self.tx.org_id,
                PointsBadge.criteria == "event_count",
                PointsBadge.event == event,
            )
        ).all()
        if not badges:
            return
        count = int(
            self.conn.scalar(
                sa.select(sa.func.count())
                .select_from(PointsTxn)
                .join(PointsRule, PointsRule.id == PointsTxn.rule_id)
                .where(
                    PointsTxn.org_id == self.tx.org_id,
                    PointsTxn.member_id == member_id,
                    PointsTxn.kind == "award",
                    PointsRule.event == event,
                )
            )
            or 0
        )
        for badge_id, code, threshold in badges:
            if count >= int(threshold or 0):
                self._give_badge(badge_id, code, member_id, {"by": "event_count", "count": count})

    @operation("GET /badge-awards/{award_id}/assertion", public=True)
    def badge_assertion(self, award_id: uuid.UUID, *, base_url: str) -> dict[str, Any]:
        """An Open Badges 2.0 assertion (hosted verification) for a badge award, as a dict.

        ``base_url`` is where the app serves assertions, e.g. ``https://ngo.example/badges``;
        the assertion's ``id`` (its verification URL) is ``<base_url>/assertions/<id>``. The
        recipient is a salted SHA-256 hash of the member id, so no personal data leaves.
        """
        row = self.tx.get_owned(PointsBadgeAward, award_id, "Badge award")
        badge = self.tx.get_owned(PointsBadge, row.badge_id, "Badge")
        import hashlib

        salt = str(row.id)[:8]
        hashed = hashlib.sha256(f"{row.member_id}{salt}".encode()).hexdigest()
        base = base_url.rstrip("/")
        org = self.tx.require_org()
        return {
            "@context": "https://w3id.org/openbadges/v2",
            "type": "Assertion",
            "id": f"{base}/assertions/{row.id}",
            "recipient": {
                "type": "id",
                "hashed": True,
                "salt": salt,
                "identity": f"sha256${hashed}",
            },
            "issuedOn": row.awarded_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "verification": {"type": "hosted"},
            "badge": {
                "type": "BadgeClass",
                "id": f"{base}/badges/{badge.id}",
                "name": badge.name,
                "description": badge.description or badge.name,
                "image": badge.image_url or f"{base}/badges/{badge.id}/image",
                "criteria": {"narrative": _criteria_text(badge)},
                "issuer": {
                    "type": "Profile",
                    "id": f"{base}/issuers/{org.id}",
                    "name": org.name,
                },
            },
        }
