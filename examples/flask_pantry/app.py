"""Riverside Food Pantry: a Flask app on ngo-kit's inventory module alone.

Pages: stock on hand (``/``), receive a donation with lot and expiry (``/receive``), issue
food to a household (``/issue``) and a donor's trace report (``/trace``). Every form posts to a
service call; the service checks the input and the stock, and a refused call writes nothing.
Errors are shown in English and Chinese.

Run it: ``python examples/flask_pantry/app.py`` (http://127.0.0.1:5000, database
``build/flask_pantry/pantry.db``), or ``flask --app examples/flask_pantry/app.py run``.
The kit is not tied to a web framework: the same calls work from FastAPI, Django or a script.
"""

from __future__ import annotations

import secrets
import sys
import uuid
from pathlib import Path
from typing import Any

from flask import Flask, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from ngo_kit import Kit, NgoKitError, NotFound, ValidationFailed
from ngo_kit.tenancy import OrgRead

HERE = Path(__file__).resolve().parent
DEFAULT_DATABASE = HERE.parent.parent / "build" / "flask_pantry" / "pantry.db"
PANTRY = "riverside-pantry"
SHELF = "shelf"
#: The volunteer on duty. Signing people in is the registration module's job; this example
#: uses only inventory, so it acts as the pantry's owner account.
ON_DUTY = uuid.UUID("0193a3f0-0000-7000-8000-000000000001")
ITEMS = (
    {"code": "rice", "name": "Rice", "name_zh": "大米", "unit": "kg"},
    {"code": "oil", "name": "Cooking oil", "name_zh": "食用油", "unit": "bottle"},
    {
        "code": "milk",
        "name": "UHT milk",
        "name_zh": "常温奶",
        "unit": "carton",
        "tracked_by_lot": True,
        "perishable": True,
    },
)


def open_pantry(kit: Kit) -> OrgRead:
    """The pantry organisation, created with its catalogue and shelf on first start."""
    try:
        with kit.begin(org=PANTRY, actor=ON_DUTY) as tx:
            return tx.require_org()
    except NotFound:
        pass
    org = kit.create_organisation(PANTRY, "Riverside Food Pantry", owner=ON_DUTY)
    with kit.begin(org=org, actor=ON_DUTY) as tx:
        for item in ITEMS:
            tx.inventory.create_item(**item)
        tx.inventory.create_location(code=SHELF, name="Pantry shelves")
    return org


def _form(*names: str) -> dict[str, str]:
    """The named form fields that were filled in (a blank field is left out, so it is optional)."""
    return {n: request.form[n].strip() for n in names if request.form.get(n, "").strip()}


def _problems(error: NgoKitError) -> list[dict[str, str]]:
    """Each problem of ``error`` in English and Chinese, for the page."""
    found = error.errors if isinstance(error, ValidationFailed) else [error]
    return [{"en": e.message_in("en"), "zh": e.message_in("zh_CN")} for e in found]


def create_app(database_url: str | None = None) -> Flask:
    """The pantry app on ``database_url`` (default: ``build/flask_pantry/pantry.db``)."""
    kit = Kit(database_url or f"sqlite:///{DEFAULT_DATABASE}", modules=["inventory"])
    kit.upgrade()
    org = open_pantry(kit)
    app = Flask(__name__, template_folder=str(HERE / "templates"))
    app.config["SECRET_KEY"] = secrets.token_hex(16)  # for flash messages only
    app.extensions["ngo_kit"] = kit

    def items() -> list[Any]:
        with kit.begin(org=org, actor=ON_DUTY) as tx:
            return list(tx.inventory.items())

    @app.get("/")
    def stock() -> str:
        with kit.begin(org=org, actor=ON_DUTY) as tx:
            lines = tx.inventory.stock_on_hand(location=SHELF)
            expiring = tx.inventory.expiring(within_days=14)
        return render_template("stock.html", lines=lines, expiring=expiring)

    @app.route("/receive", methods=["GET", "POST"])
    def receive() -> str | Response | tuple[str, int]:
        if request.method == "GET":
            return render_template("receive.html", items=items(), form={}, key=_key())
        data = _form("item", "quantity", "lot", "expires_on", "donor", "donation", "key")
        try:
            with kit.begin(org=org, actor=ON_DUTY) as tx:
                done = tx.inventory.receive(data, to=SHELF)
        except NgoKitError as error:
            page = render_template(
                "receive.html",
                items=items(),
                form=data,
                key=data.get("key"),
                errors=_problems(error),
            )
            return page, 400 if isinstance(error, ValidationFailed) else 409
        flash(
            f"Received {done.quantity.normalize():f} {data['item']} ({data.get('donation', 'no donation ref')})"
        )
        return redirect(url_for("stock"))

    @app.route("/issue", methods=["GET", "POST"])
    def issue() -> str | Response | tuple[str, int]:
        if request.method == "GET":
            return render_template("issue.html", items=items(), form={}, key=_key())
        data = _form("item", "quantity", "lot", "recipient", "key")
        try:
            with kit.begin(org=org, actor=ON_DUTY) as tx:
                done = tx.inventory.issue(data, from_=SHELF, recipient_kind="household")
        except NgoKitError as error:
            page = render_template(
                "issue.html", items=items(), form=data, key=data.get("key"), errors=_problems(error)
            )
            return page, 400 if isinstance(error, ValidationFailed) else 409
        flash(f"Issued {done.quantity.normalize():f} {data['item']} to {data['recipient']}")
        return redirect(url_for("stock"))

    @app.get("/trace")
    def trace() -> str | tuple[str, int]:
        donation = request.args.get("donation", "").strip()
        with kit.begin(org=org, actor=ON_DUTY) as tx:
            received = tx.inventory.history(kind="receive", limit=1000)
            donations = sorted({m.donation_ref for m in received if m.donation_ref})
            if not donation:
                return render_template("trace.html", donations=donations, report=None)
            try:
                report = tx.inventory.trace_donation(donation, donor_facing=True)
            except NotFound as error:
                page = render_template(
                    "trace.html", donations=donations, report=None, errors=_problems(error)
                )
                return page, 404
        return render_template("trace.html", donations=donations, report=report)

    return app


def _key() -> str:
    """A key per form shown, so a form submitted twice (a double click) records once."""
    return uuid.uuid4().hex


if __name__ == "__main__":
    create_app(sys.argv[1] if len(sys.argv) > 1 else None).run(debug=False)
