"""Membership: invitations, joining and join requests, roles, leaving and removal, and the
list of members."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ngo_kit.db import new_id, utcnow
from ngo_kit.errors import (
    AlreadyExists,
    Conflict,
    LocalisedText,
    NotFound,
    PermissionDenied,
    TokenExpired,
    TokenInvalid,
    TokenUsed,
    ValidationFailed,
)
from ngo_kit.operations import operation
from ngo_kit.schemas import no_control_characters
from ngo_kit.tenancy import Membership, Role
from ngo_kit.tokens import tokens_for

from .base import (
    BASIC_ROLES,
    PURPOSE_INVITATION,
    RegistrationBase,
    _boundary,
    _changed,
    _get,
    _user,
    _uuid,
)
from .errors import (
    JoiningClosed,
)
from .models import (
    Account,
    Invitation,
    JoinRequest,
)
from .schemas import (
    InvitationRead,
    JoinRequestRead,
    UserRead,
    normalise_email,
)

if TYPE_CHECKING:
    from ngo_kit.context import Context


class Memberships(RegistrationBase):
    """``tx.registration``'s membership of ``tx``'s organisation."""

    @operation("GET /members", permission="members.view", custom=True)
    def members(self, *, limit: int = 100, offset: int = 0) -> list[UserRead]:
        """The organisation's members, oldest membership first (``members.view``)."""
        self.tx.require("members.view")
        rows = self.tx.connection.execute(
            sa.select(Account.__table__)
            .join(Membership, Membership.actor_id == Account.id)
            .where(Membership.org_id == self.tx.org_id)
            .order_by(Membership.created_at, Account.id)
            .limit(limit)
            .offset(offset)
        )
        return [_user(r) for r in rows]

    @operation("POST /invitations", permission="members.invite", status=201)
    def invite(
        self,
        *,
        email: str | None = None,
        phone: str | None = None,
        role: str = "member",
        days: int | None = None,
    ) -> InvitationRead:
        """Invite a person to join with ``role`` (``members.invite``; roles other than member
        and volunteer also need ``members.manage_roles``). Sends the signed link; the returned
        ``InvitationRead.token`` is the same link token."""
        tx = self.tx
        tx.require("members.invite")
        if role not in BASIC_ROLES:
            tx.require("members.manage_roles")
        e = _boundary("email", normalise_email, email) if email else None
        p = self._phone(phone) if phone else None
        if e is None and p is None:
            raise ValidationFailed("email", "identifier_required")
        self._role_exists(role)
        lifetime = days if days is not None else self.settings.invitation_days
        if not 1 <= lifetime <= 90:
            raise ValidationFailed("days", "less_than_equal", le=90)
        now = utcnow()
        inv_id = new_id()
        expires = now + dt.timedelta(days=lifetime)
        tx.connection.execute(
            sa.insert(Invitation).values(
                id=inv_id,
                org_id=tx.org_id,
                email=e,
                phone=p,
                role=role,
                status="pending",
                invited_by=_actor(tx),
                expires_at=expires,
                created_at=now,
            )
        )
        token = tokens_for(tx.kit).sign(PURPOSE_INVITATION, {"i": str(inv_id), "o": str(tx.org_id)})
        org = tx.require_org()
        self._send(
            "email" if e else "sms",
            e or p or "",
            f"Invitation to join {org.name}",
            f"You are invited to join {org.name}. Accept with this link: "
            f"{self._link('invitation', token)}",
            {"purpose": PURPOSE_INVITATION, "token": token},
        )
        tx.audit("member.invited", "invitation", inv_id, f"invited as {role}", data={"role": role})
        return InvitationRead(
            id=inv_id,
            email=e,
            phone=p,
            role=role,
            status="pending",
            expires_at=expires,
            created_at=now,
            token=token,
        )

    @operation(
        "POST /invitations/accept", errors=(AlreadyExists, TokenInvalid, TokenExpired, TokenUsed)
    )
    def accept_invitation(self, token: str) -> UserRead:
        """The signed-in person accepts an invitation and becomes a member with its role.

        Single use: ``TokenUsed`` the second time; ``TokenExpired`` after its lifetime;
        ``TokenInvalid`` once revoked. Fires ``ngo_kit_member_joined``.
        """
        tx = self.tx
        key = tx.actor_id
        if key is None:
            raise PermissionDenied("registration.accept_invitation")
        invitation = self._open_invitation(self._invitation_id(token))
        self._account(key)
        if self._is_member(key):
            raise AlreadyExists("Membership", key)
        self._use_invitation(invitation, key)
        self._add_member(key, invitation.role)
        return self._read(key)

    @operation(
        "POST /invitations/{invitation_id}/revoke", permission="members.invite", errors=(Conflict,)
    )
    def revoke_invitation(self, invitation_id: uuid.UUID | str) -> InvitationRead:
        """Withdraw a pending invitation (``members.invite``)."""
        tx = self.tx
        tx.require("members.invite")
        row = tx.get_owned(Invitation, invitation_id, "Invitation")
        done = tx.connection.execute(
            sa.update(Invitation)
            .where(Invitation.id == row.id, Invitation.status == "pending")
            .values(status="revoked", decided_at=utcnow())
        )
        if _changed(done) != 1:
            raise Conflict("The invitation is no longer pending.")
        tx.audit("member.invitation_revoked", "invitation", row.id, "invitation revoked")
        return _invitation(row, status="revoked")

    @operation("GET /invitations", permission="members.invite")
    def invitations(self, status: str | None = "pending") -> list[InvitationRead]:
        """The organisation's invitations, newest first (``members.invite``)."""
        tx = self.tx
        tx.require("members.invite")
        stmt = sa.select(Invitation.__table__).where(Invitation.org_id == tx.org_id)
        if status is not None:
            stmt = stmt.where(Invitation.status == status)
        rows = tx.connection.execute(stmt.order_by(Invitation.created_at.desc()))
        return [_invitation(r) for r in rows]

    @operation("POST /me/join", errors=(JoiningClosed, AlreadyExists))
    def join(self) -> UserRead:
        """The signed-in person joins an organisation whose ``joining`` setting is ``open``."""
        tx = self.tx
        key = self._signed_in()
        joining = str(tx.require_org().settings.get("joining", "open"))
        if joining != "open":
            how = "by approval" if joining == "approval" else "by invitation only"
            raise JoiningClosed(how=LocalisedText(how))
        if self._is_member(key):
            raise AlreadyExists("Membership", key)
        self._add_member(key, "member")
        return self._read(key)

    @operation("POST /join-requests", status=201, errors=(JoiningClosed, AlreadyExists))
    def request_to_join(self, message: str | None = None) -> JoinRequestRead:
        """The signed-in person asks to join; an administrator approves or rejects it."""
        tx = self.tx
        key = self._signed_in()
        joining = str(tx.require_org().settings.get("joining", "open"))
        if joining == "invitation":
            raise JoiningClosed(how=LocalisedText("by invitation only"))
        if message is not None:
            message = _boundary("message", no_control_characters, message.strip())[:1000] or None
        if self._is_member(key):
            raise AlreadyExists("Membership", key)
        return self._file_join_request(key, message)

    @operation("GET /join-requests", permission="members.approve")
    def join_requests(self, status: str | None = "pending") -> list[JoinRequestRead]:
        """Join requests, oldest first (``members.approve``)."""
        tx = self.tx
        tx.require("members.approve")
        stmt = sa.select(JoinRequest.__table__).where(JoinRequest.org_id == tx.org_id)
        if status is not None:
            stmt = stmt.where(JoinRequest.status == status)
        return [
            JoinRequestRead.model_validate(r)
            for r in tx.connection.execute(stmt.order_by(JoinRequest.created_at))
        ]

    @operation(
        "POST /join-requests/{request_id}/approve",
        permission="members.approve",
        errors=(Conflict, AlreadyExists),
    )
    def approve_join(self, request_id: uuid.UUID | str, role: str = "member") -> UserRead:
        """Approve a pending request (``members.approve``): the person becomes a member."""
        tx = self.tx
        tx.require("members.approve")
        if role not in BASIC_ROLES:
            tx.require("members.manage_roles")
        row = self._decide(request_id, "approved")
        self._add_member(row.account_id, role)
        return self._read(row.account_id)

    @operation(
        "POST /join-requests/{request_id}/reject", permission="members.approve", errors=(Conflict,)
    )
    def reject_join(self, request_id: uuid.UUID | str) -> JoinRequestRead:
        """Reject a pending request (``members.approve``)."""
        self.tx.require("members.approve")
        row = self._decide(request_id, "rejected")
        return JoinRequestRead.model_validate(row).model_copy(update={"status": "rejected"})

    @operation("PUT /members/{user_id}/role", permission="members.manage_roles")
    def set_role(self, user_id: uuid.UUID | str, role: str) -> None:
        """Change a member's role (``members.manage_roles``); the last owner stays an owner."""
        tx = self.tx
        tx.require("members.manage_roles")
        key = _uuid(user_id, "User")
        with tx.elevated():
            tx.tenancy.set_role(key, role)

    @operation("POST /me/leave")
    def leave(self) -> None:
        """The signed-in person ends their membership. Fires ``ngo_kit_member_left``."""
        key = self._signed_in()
        self._end_membership(key)

    @operation("DELETE /members/{user_id}", permission="members.remove")
    def remove_member(self, user_id: uuid.UUID | str) -> None:
        """End someone's membership (``members.remove``). Fires ``ngo_kit_member_left``."""
        self.tx.require("members.remove")
        self._end_membership(_uuid(user_id, "User"))

    def _signed_in(self) -> uuid.UUID:
        key = self.tx.actor_id
        if key is None:
            raise PermissionDenied("registration.self")
        self._account(key)
        return key

    def _add_member(self, key: uuid.UUID, role: str, *, added: bool = False) -> None:
        """Make ``key`` a member with ``role`` and fire ``ngo_kit_member_joined``.

        Core's ``tenancy.add_member`` writes the membership, elevated as the module's own flows
        always ran (it asks ``ngo_kit_refuse_member`` and names why nothing was added). With
        ``added`` the sign-up's statement wrote the row with the account already; only this
        module's hook, which lets elevated calls pass, could have refused it (``_insert_account``),
        so what is left is core's bookkeeping for a new member.
        """
        tx = self.tx
        if added:
            tx.forget_permissions()
            tx.audit("member.added", "member", key, f"member added as {role}", data={"role": role})
        else:
            with tx.elevated():
                tx.tenancy.add_member(key, role)
        tx.emit("ngo_kit_member_joined", user_id=key, role=role)

    def _end_membership(self, key: uuid.UUID) -> None:
        tx = self.tx
        if not self._is_member(key):
            raise NotFound("Member", key)
        with tx.elevated():
            tx.tenancy.remove_member(key)
        tx.emit("ngo_kit_member_left", user_id=key)

    def _role_exists(self, role: str) -> None:
        found = self.tx.connection.scalar(
            sa.select(Role.id).where(Role.org_id == self.tx.org_id, Role.name == role)
        )
        if found is None:
            raise NotFound("Role", role)

    def _invitation_id(self, token: str) -> Any:
        """The invitation id a token carries, once its signature, age and organisation check
        out (no database read); ``TokenInvalid`` subclasses otherwise."""
        tx = self.tx
        data = tokens_for(tx.kit).load(PURPOSE_INVITATION, token, max_age=dt.timedelta(days=90))
        if str(_get(data, "o")) != str(tx.org_id):
            raise TokenInvalid()
        return _get(data, "i")

    def _open_invitation(self, invitation_id: Any) -> Invitation:
        """The pending, unexpired invitation ``invitation_id`` (from ``_invitation_id``)."""
        tx = self.tx
        row: Invitation = tx.get_owned(Invitation, invitation_id, "Invitation")
        if row.status == "accepted":
            raise TokenUsed()
        if row.status != "pending":
            raise TokenInvalid()
        if row.expires_at <= utcnow():
            raise TokenExpired()
        return row

    def _use_invitation(self, invitation: Invitation, key: uuid.UUID) -> None:
        tx = self.tx
        done = tx.connection.execute(
            sa.update(Invitation)
            .where(Invitation.id == invitation.id, Invitation.status == "pending")
            .values(status="accepted", accepted_by=key, decided_at=utcnow())
        )
        if _changed(done) != 1:
            raise TokenUsed()
        tx.audit("member.invitation_accepted", "invitation", invitation.id, "invitation accepted")

    def _file_join_request(self, key: uuid.UUID, message: str | None) -> JoinRequestRead:
        tx = self.tx
        pending = tx.connection.scalar(
            sa.select(JoinRequest.id).where(
                JoinRequest.org_id == tx.org_id,
                JoinRequest.account_id == key,
                JoinRequest.status == "pending",
            )
        )
        if pending is not None:
            raise AlreadyExists("JoinRequest", pending)
        req_id, now = new_id(), utcnow()
        tx.connection.execute(
            sa.insert(JoinRequest).values(
                id=req_id,
                org_id=tx.org_id,
                account_id=key,
                message=message,
                status="pending",
                created_at=now,
            )
        )
        tx.audit("member.join_requested", "join_request", req_id, "asked to join")
        return JoinRequestRead(
            id=req_id, account_id=key, message=message, status="pending", created_at=now
        )

    def _decide(self, request_id: uuid.UUID | str, status: str) -> JoinRequest:
        tx = self.tx
        row: JoinRequest = tx.get_owned(JoinRequest, request_id, "JoinRequest")
        done = tx.connection.execute(
            sa.update(JoinRequest)
            .where(JoinRequest.id == row.id, JoinRequest.status == "pending")
            .values(status=status, decided_by=_actor(tx), decided_at=utcnow())
        )
        if _changed(done) != 1:
            raise Conflict("The join request was decided already.")
        tx.audit(f"member.join_{status}", "join_request", row.id, f"join request {status}")
        return row


def _invitation(row: Any, **update: Any) -> InvitationRead:
    read = InvitationRead(
        id=row.id,
        email=row.email,
        phone=row.phone,
        role=row.role,
        status=row.status,
        expires_at=row.expires_at,
        created_at=row.created_at,
    )
    return read.model_copy(update=update) if update else read


def _actor(tx: Context) -> str:
    from ngo_kit.audit import actor_label

    return actor_label(tx.actor)
