"""The inventory module over HTTP: the catalogue, goods received and issued by staff, stock on
hand, history, the donor-facing trace report, permissions, errors and tenancy."""

from __future__ import annotations

from decimal import Decimal

from web_api_support import OTHER, ZH, Api, Person, problem_of


def _catalogue(api: Api) -> tuple[Person, Person]:
    """An administrator sets up rice and a warehouse; returns (admin, staff)."""
    admin = api.join("wen", role="admin")
    staff = api.join("xia", role="staff")
    item = api.client.post(
        api.url("inventory/items"),
        json={"code": "rice-5kg", "name": "Rice 5 kg", "name_zh": "大米 5 公斤", "unit": "bag"},
        headers=admin.auth,
    )
    assert item.status_code == 201, item.text
    loc = api.client.post(
        api.url("inventory/locations"),
        json={"code": "main", "name": "Main warehouse"},
        headers=admin.auth,
    )
    assert loc.status_code == 201, loc.text
    return admin, staff


def _receive(api: Api, staff: Person, quantity: str = "100", **extra: str) -> None:
    res = api.client.post(
        api.url("inventory/receipts"),
        json={
            "item": "rice-5kg",
            "quantity": quantity,
            "to": "main",
            "donor": "ACME Foods",
            "donation": "D-2026-001",
            **extra,
        },
        headers=staff.auth,
    )
    assert res.status_code == 201, res.text


def test_staff_receives_and_issues_goods_and_stock_follows(api: Api) -> None:
    _, staff = _catalogue(api)
    _receive(api, staff, key="rcv-1")
    _receive(api, staff, key="rcv-1")  # a retried request receives once
    issued = api.client.post(
        api.url("inventory/issues"),
        json={
            "item": "rice-5kg",
            "quantity": "30",
            "from_": "main",
            "recipient": "Wang household",
            "recipient_kind": "household",
        },
        headers=staff.auth,
    )
    assert issued.status_code == 201, issued.text
    [move] = issued.json()["moves"]
    assert (move["kind"], Decimal(move["quantity"])) == ("issue", Decimal(30))

    stock = api.client.get(api.url("inventory/stock"), headers=staff.auth).json()
    assert [(s["item_code"], s["location_code"], Decimal(s["quantity"])) for s in stock] == [
        ("rice-5kg", "main", Decimal(70))
    ]
    moves = api.client.get(api.url("inventory/moves?item=rice-5kg"), headers=staff.auth).json()
    assert [m["kind"] for m in moves] == ["issue", "receive"]


def test_issuing_more_than_on_hand_is_a_409_in_both_languages_and_writes_nothing(
    api: Api,
) -> None:
    _, staff = _catalogue(api)
    _receive(api, staff, quantity="10")
    body = {"item": "rice-5kg", "quantity": "11", "from_": "main", "recipient": "Li family"}
    en = problem_of(
        api.client.post(api.url("inventory/issues"), json=body, headers=staff.auth),
        409,
        "insufficient_stock",
    )
    zh = problem_of(
        api.client.post(api.url("inventory/issues"), json=body, headers={**staff.auth, **ZH}),
        409,
        "insufficient_stock",
    )
    assert en["detail"] != zh["detail"]
    stock = api.client.get(api.url("inventory/stock"), headers=staff.auth).json()
    assert Decimal(stock[0]["quantity"]) == Decimal(10)


def test_the_donor_facing_trace_shows_where_the_goods_went(api: Api) -> None:
    _, staff = _catalogue(api)
    _receive(api, staff)
    api.client.post(
        api.url("inventory/issues"),
        json={"item": "rice-5kg", "quantity": "40", "from_": "main", "recipient": "Zhao Lei"},
        headers=staff.auth,
    )
    res = api.client.get(api.url("inventory/donations/D-2026-001/trace"), headers=staff.auth)
    assert res.status_code == 200, res.text
    trace = res.json()
    assert trace["donor_facing"] is True
    assert (Decimal(trace["received"]), Decimal(trace["distributed"])) == (
        Decimal(100),
        Decimal(40),
    )
    assert Decimal(trace["on_hand"]) == Decimal(60)
    [line] = trace["lines"]
    assert line["recipient"] != "Zhao Lei"  # beneficiaries are not named to donors
    full = api.client.get(
        api.url("inventory/donations/D-2026-001/trace?donor_facing=false"), headers=staff.auth
    ).json()
    assert full["lines"][0]["recipient"] == "Zhao Lei"
    missing = api.client.get(api.url("inventory/donations/D-404/trace"), headers=staff.auth)
    problem_of(missing, 404, "not_found")


def test_quantities_must_be_exact_decimals_not_json_floats(api: Api) -> None:
    _, staff = _catalogue(api)
    res = api.client.post(
        api.url("inventory/receipts"),
        json={"item": "rice-5kg", "quantity": 0.1, "to": "main"},
        headers=staff.auth,
    )
    body = problem_of(res, 422, "validation_failed")
    assert (body["field"], body["rule"]) == ("quantity", "float_not_allowed")
    _receive(api, staff, quantity="2.5")


def test_members_without_inventory_rights_are_refused(api: Api) -> None:
    _catalogue(api)
    member = api.join("yan")
    res = api.client.get(api.url("inventory/stock"), headers={**member.auth, **ZH})
    body = problem_of(res, 403, "permission_denied")
    assert body["permission"] == "inventory.view"
    receipt = api.client.post(
        api.url("inventory/receipts"),
        json={"item": "rice-5kg", "quantity": "1", "to": "main"},
        headers=member.auth,
    )
    assert problem_of(receipt, 403, "permission_denied")["permission"] == "inventory.receive"
    staff_only = api.client.post(
        api.url("inventory/items"),
        json={"code": "oil", "name": "Oil"},
        headers=api.people["xia"].auth,
    )
    assert problem_of(staff_only, 403, "permission_denied")["permission"] == "inventory.manage"
    problem_of(api.client.get(api.url("inventory/stock")), 401, "authentication_required")


def test_one_organisations_stock_never_shows_through_anothers_path(api: Api) -> None:
    _, staff = _catalogue(api)
    _receive(api, staff)
    outsider = api.join("zed", org=OTHER, role="staff")
    assert api.client.get(api.url("inventory/stock", OTHER), headers=outsider.auth).json() == []
    assert api.client.get(api.url("inventory/items", OTHER), headers=outsider.auth).json() == []
    trace = api.client.get(
        api.url("inventory/donations/D-2026-001/trace", OTHER), headers=outsider.auth
    )
    problem_of(trace, 404, "not_found")
    issue = api.client.post(
        api.url("inventory/issues", OTHER),
        json={"item": "rice-5kg", "quantity": "1", "from_": "main", "recipient": "X"},
        headers=outsider.auth,
    )
    problem_of(issue, 404, "not_found")
    # rainbow's staff are not members of the other organisation: it is not shown to them
    problem_of(
        api.client.get(api.url("inventory/stock", OTHER), headers=staff.auth),
        404,
        "not_found",
    )


def test_staff_download_stock_and_history_as_csv_and_xlsx_attachments(api: Api) -> None:
    _, staff = _catalogue(api)
    _receive(api, staff, quantity="12")
    stock = api.client.get(api.url("inventory/stock/export?fmt=csv"), headers=staff.auth)
    assert stock.status_code == 200, stock.text
    assert stock.headers["content-type"].startswith("text/csv")
    assert stock.headers["content-disposition"] == 'attachment; filename="stock.csv"'
    lines = stock.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("location,item,category,lot")
    assert lines[1].startswith("main,rice-5kg,")
    moves = api.client.get(
        api.url("inventory/moves/export?fmt=xlsx&kind=receive"), headers=staff.auth
    )
    assert moves.status_code == 200, moves.text
    assert moves.headers["content-disposition"] == 'attachment; filename="moves.xlsx"'
    assert moves.content[:2] == b"PK"  # an XLSX file is a zip archive
    none = api.client.get(api.url("inventory/moves/export?kind=issue"), headers=staff.auth)
    assert none.content.decode("utf-8-sig").count("\n") == 1  # the header only: filtered
    odd = api.client.get(api.url("inventory/stock/export?fmt=pdf"), headers=staff.auth)
    assert problem_of(odd, 422, "validation_failed")["rule"] == "unknown_format"
    member = api.join("yan")
    refused = api.client.get(api.url("inventory/stock/export"), headers=member.auth)
    assert problem_of(refused, 403, "permission_denied")["permission"] == "inventory.view"


def test_uploaded_item_and_opening_stock_files_are_written_all_or_none(api: Api) -> None:
    admin, staff = _catalogue(api)
    items = b"code,name,unit\noil,Cooking oil,bottle\nflour,Flour,kg\n"
    url = api.url("inventory/items/import?fmt=csv")
    csv_type = {"Content-Type": "text/csv"}
    refused = api.client.post(url, content=items, headers={**staff.auth, **csv_type})
    assert problem_of(refused, 403, "permission_denied")["permission"] == "inventory.manage"
    admin_csv = {**admin.auth, **csv_type}
    bad = api.client.post(url, content=items + b"oil,Oil again,bottle\n", headers=admin_csv)
    assert bad.status_code == 200, bad.text
    assert (bad.json()["ok"], bad.json()["written"]) == (False, 0)
    assert [(e["row"], e["rule"]) for e in bad.json()["errors"]] == [(4, "duplicate_in_file")]
    # a form or plain text, which another site's page could post with the cookie, is refused
    plain = {**admin.auth, "Content-Type": "text/plain", **ZH}
    body = problem_of(api.client.post(url, content=items, headers=plain), 422, "validation_failed")
    assert (body["field"], body["rule"]) == ("body", "upload_content_type")
    assert "文件本身" in body["detail"]
    good = api.client.post(url, content=items, headers=admin_csv)
    assert (good.json()["ok"], good.json()["written"]) == (True, 2)
    codes = [
        i["code"] for i in api.client.get(api.url("inventory/items"), headers=staff.auth).json()
    ]
    assert codes == ["flour", "oil", "rice-5kg"]

    opening = b"item,location,quantity\noil,main,24\n"
    stocked = api.client.post(
        api.url("inventory/opening-stock/import?donation=OPEN-1"),
        content=opening,
        headers={**staff.auth, "Content-Type": "application/octet-stream"},
    )
    assert (stocked.json()["ok"], stocked.json()["written"]) == (True, 1), stocked.text
    trace = api.client.get(api.url("inventory/donations/OPEN-1/trace"), headers=staff.auth)
    assert Decimal(trace.json()["on_hand"]) == Decimal(24)
