"""Documents: multi-line receipts and dispatches, drafted, confirmed, approved and posted."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from ngo_kit.audit import actor_label
from ngo_kit.db import new_id, utcnow
from ngo_kit.errors import AlreadyExists, InsufficientStock, ValidationFailed
from ngo_kit.modules.inventory.base import ZERO, InventoryBase
from ngo_kit.modules.inventory.models import Document, DocumentLine, Move, Need
from ngo_kit.modules.inventory.schemas import (
    DocumentIn,
    DocumentLineRead,
    DocumentRead,
    IssueIn,
    ReceiveIn,
)
from ngo_kit.operations import operation
from ngo_kit.schemas import coerce


class Documents(InventoryBase):
    """Receipt and dispatch documents and their states (draft, confirmed, done, cancelled)."""

    @operation("POST /documents", permission="inventory.issue", status=201, errors=(AlreadyExists,))
    def create_document(
        self, data: DocumentIn | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> DocumentRead:
        """A draft receipt (``inventory.receive``) or dispatch (``inventory.issue``).

        ``NotFound`` for a location, item or ``need`` this organisation does not have.
        """
        tx = self.tx
        spec = coerce(DocumentIn, data, kwargs)
        tx.require("inventory.receive" if spec.kind == "receipt" else "inventory.issue")
        loc = self._holding(spec.location, "location")
        if spec.kind == "dispatch" and spec.recipient is None:
            raise ValidationFailed("recipient", "missing")
        if spec.need is not None:  # another organisation's need is not found, as everywhere
            tx.get_owned(Need, spec.need, "Need")
        doc_id = new_id()
        lines = []
        for n, line in enumerate(spec.lines, start=1):
            item = self._item(line.item)
            if line.lot is None and item.tracked_by_lot and spec.kind == "receipt":
                raise ValidationFailed(f"lines.{n - 1}.lot", "lot_required")
            if line.lot is not None and not item.tracked_by_lot:
                raise ValidationFailed(f"lines.{n - 1}.lot", "lot_not_tracked")
            lines.append(
                {
                    "id": new_id(),
                    "org_id": tx.org_id,
                    "document_id": doc_id,
                    "line_no": n,
                    "item_id": item.id,
                    "quantity": self._base_quantity(item, line.quantity, line.unit),
                    "lot_code": line.lot,
                    "expires_on": line.expires_on,
                    "unit_value": line.unit_value,
                }
            )
        values = {
            "id": doc_id,
            "org_id": tx.org_id,
            "kind": spec.kind,
            "reference": spec.reference,
            "state": "draft",
            "location_id": loc.id,
            "donor_ref": spec.donor,
            "donation_ref": spec.donation,
            "recipient_ref": spec.recipient,
            "recipient_kind": spec.recipient_kind or ("beneficiary" if spec.recipient else None),
            "need_id": spec.need,
            "created_by": actor_label(tx.actor),
            "notes": spec.notes,
            "created_at": utcnow(),
        }
        with tx.translate_integrity(AlreadyExists("Document", spec.reference)):
            self.db.execute(sa.insert(Document).values(values))
        self.db.execute(sa.insert(DocumentLine), lines)
        tx.audit(f"inventory.{spec.kind}_drafted", "inventory_document", doc_id, spec.reference)
        return self.document(doc_id)

    @operation("GET /documents/{doc_id}", permission="inventory.view")
    def document(self, doc_id: uuid.UUID | str) -> DocumentRead:
        """A document with its lines and, once done, the operations it posted."""
        tx = self.tx
        tx.require("inventory.view")
        doc: Document = tx.get_owned(Document, doc_id, "Document")
        tx.session.refresh(doc)
        lines = tx.session.scalars(
            sa.select(DocumentLine)
            .where(DocumentLine.document_id == doc.id)
            .order_by(DocumentLine.line_no)
        )
        groups = tx.session.scalars(
            sa.select(Move.group_id)
            .where(Move.org_id == tx.org_id, Move.document_id == doc.id)
            .group_by(Move.group_id)
            .order_by(sa.func.min(Move.seq))
        )
        return DocumentRead.model_validate(
            {
                **doc.__dict__,
                "lines": tuple(DocumentLineRead.model_validate(x) for x in lines),
                "group_ids": tuple(groups),
            }
        )

    def _set_state(
        self, doc: Document, expected: tuple[str, ...], state: str, **extra: Any
    ) -> None:
        done = self.db.execute(
            sa.update(Document)
            .where(Document.id == doc.id, Document.state.in_(expected))
            .values(state=state, **extra)
        )
        if done.rowcount != 1:
            raise ValidationFailed(
                "state", "wrong_state", state=doc.state, expected=" or ".join(expected)
            )

    @operation("POST /documents/{doc_id}/confirm", permission="inventory.issue")
    def confirm_document(self, doc_id: uuid.UUID | str) -> DocumentRead:
        """draft -> confirmed: the lines are final (same permission as creating it)."""
        tx = self.tx
        doc: Document = tx.get_owned(Document, doc_id, "Document")
        tx.require("inventory.receive" if doc.kind == "receipt" else "inventory.issue")
        self._set_state(doc, ("draft",), "confirmed")
        tx.audit("inventory.document_confirmed", "inventory_document", doc.id, doc.reference)
        return self.document(doc.id)

    @operation("POST /documents/{doc_id}/approve", permission="inventory.approve")
    def approve_document(self, doc_id: uuid.UUID | str) -> DocumentRead:
        """Approve a confirmed dispatch (``inventory.approve``).

        The first call records the approver; above the organisation's threshold a second,
        different person must approve too (``same_approver`` otherwise).
        """
        tx = self.tx
        tx.require("inventory.approve")
        doc: Document = tx.get_owned(Document, doc_id, "Document")
        if doc.state != "confirmed":
            raise ValidationFailed("state", "wrong_state", state=doc.state, expected="confirmed")
        me = actor_label(tx.actor)
        if doc.approved_by is None:
            column = Document.approved_by
        elif doc.approved_by == me:
            raise ValidationFailed("approved_by", "same_approver")
        else:
            column = Document.second_approved_by
        done = self.db.execute(
            sa.update(Document).where(Document.id == doc.id, column.is_(None)).values({column: me})
        )
        if done.rowcount != 1:
            raise ValidationFailed("approved_by", "same_approver")
        tx.audit("inventory.document_approved", "inventory_document", doc.id, doc.reference)
        return self.document(doc.id)

    @operation(
        "POST /documents/{doc_id}/complete",
        permission="inventory.issue",
        errors=(InsufficientStock,),
    )
    def complete_document(self, doc_id: uuid.UUID | str) -> DocumentRead:
        """confirmed -> done: post every line as a receive or issue, all or nothing.

        A dispatch needs an approver, and a second one above the threshold.
        """
        tx = self.tx
        doc: Document = tx.get_owned(Document, doc_id, "Document")
        tx.require("inventory.receive" if doc.kind == "receipt" else "inventory.issue")
        lines = list(
            tx.session.scalars(
                sa.select(DocumentLine)
                .where(DocumentLine.document_id == doc.id)
                .order_by(DocumentLine.line_no)
            )
        )
        if doc.kind == "dispatch":
            total = sum((x.quantity for x in lines), ZERO)
            threshold = self._second_approval_threshold()
            if doc.approved_by is None:
                raise ValidationFailed("approved_by", "missing")
            if threshold is not None and total > threshold and doc.second_approved_by is None:
                raise ValidationFailed(
                    "second_approved_by", "needs_second_approval", threshold=threshold
                )
        self._set_state(doc, ("confirmed",), "done")
        loc = self._location(doc.location_id)
        items = [self._item(line.item_id) for line in lines]
        if doc.kind == "receipt":
            receipts = [
                ReceiveIn(
                    item=item.code,
                    quantity=line.quantity,
                    to=loc.code,
                    lot=line.lot_code,
                    expires_on=line.expires_on,
                    unit_value=line.unit_value,
                    donor=doc.donor_ref,
                    donation=doc.donation_ref,
                )
                for item, line in zip(items, lines, strict=True)
            ]
            self._lock_receipt_rows(receipts)
            for receipt in receipts:
                self._service._receive(receipt, doc.id)
        else:
            self._lock_in_order([item.id for item in items], [loc.id])
            for item, line in zip(items, lines, strict=True):
                spec = IssueIn(
                    item=item.code,
                    quantity=line.quantity,
                    from_=loc.code,
                    lot=line.lot_code,
                    recipient=doc.recipient_ref or "",
                    recipient_kind=doc.recipient_kind or "beneficiary",
                    approved_by=doc.approved_by,
                    second_approved_by=doc.second_approved_by,
                    need=doc.need_id,
                )
                self._service._issue(spec, doc.id)
        tx.audit("inventory.document_done", "inventory_document", doc.id, doc.reference)
        return self.document(doc.id)

    @operation("POST /documents/{doc_id}/cancel", permission="inventory.issue")
    def cancel_document(self, doc_id: uuid.UUID | str) -> DocumentRead:
        """draft or confirmed -> cancelled; nothing was posted, so nothing is undone."""
        tx = self.tx
        doc: Document = tx.get_owned(Document, doc_id, "Document")
        tx.require("inventory.receive" if doc.kind == "receipt" else "inventory.issue")
        self._set_state(doc, ("draft", "confirmed"), "cancelled")
        tx.audit("inventory.document_cancelled", "inventory_document", doc.id, doc.reference)
        return self.document(doc.id)
