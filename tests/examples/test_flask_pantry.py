"""examples/flask_pantry: every page and form through Flask's test client, on the inventory module alone."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ngo_kit import Kit

pytest.importorskip("flask", reason="the example needs Flask (the dev extra installs it)")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MILK = {
    "item": "milk",
    "quantity": "24",
    "lot": "M-1",
    "expires_on": "2027-03-01",
    "donor": "Green Grocer",
    "donation": "D-1",
}


@pytest.fixture
def app(empty_database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    pantry = importlib.import_module("flask_pantry.app")
    flask_app = pantry.create_app(empty_database_url)
    flask_app.config["TESTING"] = True
    yield flask_app
    flask_app.extensions["ngo_kit"].dispose()


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


def _on_hand(app: Any, item: str) -> Decimal:
    kit: Kit = app.extensions["ngo_kit"]
    pantry = importlib.import_module("flask_pantry.app")
    with kit.begin(org=pantry.PANTRY, actor=pantry.ON_DUTY) as tx:
        return Decimal(tx.inventory.on_hand(item))


def _moves(app: Any) -> int:
    kit: Kit = app.extensions["ngo_kit"]
    pantry = importlib.import_module("flask_pantry.app")
    with kit.begin(org=pantry.PANTRY, actor=pantry.ON_DUTY) as tx:
        return len(tx.inventory.history())


def test_every_page_renders(client: Any) -> None:
    for path, heading in [
        ("/", "Stock on hand 库存"),
        ("/receive", "Receive a donation 入库"),
        ("/issue", "Issue to a household 出库"),
        ("/trace", "Where your donation went 物资流向追溯报告"),
    ]:
        page = client.get(path)
        assert page.status_code == 200, path
        assert f"<h2>{heading}</h2>" in page.text
    assert "The shelves are empty." in client.get("/").text


def test_receiving_a_donation_with_lot_and_expiry_shows_in_stock(app: Any, client: Any) -> None:
    page = client.post("/receive", data={**MILK, "key": "form-1"}, follow_redirects=True)
    assert page.status_code == 200
    assert "Received 24 milk (D-1)" in page.text
    assert "<td>milk</td><td>M-1</td><td>2027-03-01</td>" in page.text
    assert _on_hand(app, "milk") == 24


def test_a_form_submitted_twice_records_once(app: Any, client: Any) -> None:
    for _ in range(2):
        client.post("/receive", data={**MILK, "key": "form-1"})
    assert _on_hand(app, "milk") == 24
    assert _moves(app) == 1


def test_issuing_to_a_household_takes_the_first_expiring_lot(app: Any, client: Any) -> None:
    client.post("/receive", data={**MILK, "key": "a"})
    client.post("/receive", data={**MILK, "lot": "M-0", "expires_on": "2027-01-15", "key": "b"})
    page = client.post(
        "/issue",
        data={"item": "milk", "quantity": "30", "recipient": "household-12", "key": "c"},
        follow_redirects=True,
    )
    assert "Issued 30 milk to household-12" in page.text
    assert "<td>M-0</td>" not in page.text  # lot M-0 (first to expire) is used up
    assert "<td>milk</td><td>M-1</td><td>2027-03-01</td>" in page.text
    assert _on_hand(app, "milk") == 18


def test_a_bad_quantity_shows_the_error_in_both_languages_and_writes_nothing(
    app: Any, client: Any
) -> None:
    page = client.post("/receive", data={**MILK, "quantity": "-3", "key": "x"})
    assert page.status_code == 400
    assert '<span lang="en">quantity: must be greater than 0</span>' in page.text
    assert '<span lang="zh-CN">quantity：必须大于 0</span>' in page.text
    assert 'value="-3"' in page.text  # the form keeps what was typed
    assert _moves(app) == 0


def test_milk_without_a_lot_is_refused_in_both_languages(app: Any, client: Any) -> None:
    page = client.post("/receive", data={**MILK, "lot": "", "key": "x"})
    assert page.status_code == 400
    assert '<span lang="en">lot: names no lot, but the item is tracked by lot</span>' in page.text
    assert '<span lang="zh-CN">lot' in page.text
    assert _moves(app) == 0


def test_issuing_more_than_on_hand_is_refused_and_writes_nothing(app: Any, client: Any) -> None:
    client.post("/receive", data={"item": "rice", "quantity": "10", "donation": "D-2", "key": "a"})
    page = client.post(
        "/issue", data={"item": "rice", "quantity": "12", "recipient": "household-3", "key": "b"}
    )
    assert page.status_code == 409
    assert '<span lang="en">' in page.text and '<span lang="zh-CN">' in page.text
    assert _on_hand(app, "rice") == 10
    assert _moves(app) == 1


def test_the_donor_trace_shows_where_the_goods_went_without_naming_households(
    client: Any,
) -> None:
    client.post("/receive", data={**MILK, "key": "a"})
    for n, household in enumerate(("household-12", "household-40")):
        client.post(
            "/issue",
            data={"item": "milk", "quantity": "5", "recipient": household, "key": f"i{n}"},
        )
    index = client.get("/trace")
    assert "<option >D-1</option>" in index.text
    page = client.get("/trace?donation=D-1")
    assert page.status_code == 200
    assert "<h3>D-1 · Green Grocer</h3>" in page.text
    assert "distributed 已发放 10" in page.text and "on hand 在库 14" in page.text
    assert "Household 1" in page.text and "Household 2" in page.text
    assert "household-12" not in page.text


def test_an_unknown_donation_is_not_found(client: Any) -> None:
    page = client.get("/trace?donation=D-404")
    assert page.status_code == 404
    assert "D-404" in page.text
