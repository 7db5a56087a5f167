"""Run relief_hub: migrate the database, seed it when empty, serve it (``make demo``).

    python examples/relief_hub/demo.py [--database-url URL] [--host H] [--port P]
    python examples/relief_hub/demo.py --smoke

``--smoke`` does the same on a fresh temporary SQLite database and a free port, requests every
page (as a visitor, a volunteer and staff, in both organisations), stops the server and exits 0
only when every page answered 200; otherwise it names each failing URL and exits 1. CI runs it.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import re
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.append(str(Path(__file__).resolve().parents[2]))

import uvicorn

from examples.relief_hub.app import build_kit, create_relief_hub
from examples.relief_hub.seed import ORGANISATIONS, PEOPLE, seed

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATABASE = f"sqlite:///{ROOT / 'build' / 'relief_hub.db'}"
#: Every staff page, relative to ``/o/<org>/``: the smoke check opens each as staff.
STAFF_PAGES = (
    "staff/",
    "staff/check-in",
    "staff/donations",
    "staff/issue",
    "staff/hours",
    "staff/shifts",
    "staff/volunteers",
    "staff/redemptions",
    "staff/certificates",
)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the demo (or the smoke check)."""
    parser = argparse.ArgumentParser(description="relief_hub: ngo-kit's flagship example app")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--smoke", action="store_true", help="request every page on a fresh database, then exit"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        port = _free_port()
        link_to(f"http://{args.host}:{port}")
        with tempfile.TemporaryDirectory(prefix="relief_hub_") as folder:
            return smoke(f"sqlite:///{Path(folder) / 'smoke.db'}", args.host, port)
    link_to(f"http://{args.host}:{args.port}")
    serve(args.database_url, args.host, args.port)
    return 0


def link_to(base: str) -> None:
    """Emailed verification links open relief_hub's own page at ``base`` (the registration
    module's ``NGO_KIT_REGISTRATION_LINK_TEMPLATES``, unless the environment sets it), and so
    do certificates' QR codes (``NGO_KIT_PUBLIC_BASE_URL``, set here only for a local address:
    a deployment names the address people reach it at)."""
    pages = {
        "verify_email": f"{base}/o/{{org}}/verify-email?token={{token}}",
        "reset_password": f"{base}/o/{{org}}/reset-password?token={{token}}",
    }
    os.environ.setdefault("NGO_KIT_REGISTRATION_LINK_TEMPLATES", json.dumps(pages))
    if urllib.parse.urlsplit(base).hostname in ("127.0.0.1", "localhost"):
        os.environ.setdefault("NGO_KIT_PUBLIC_BASE_URL", base)


def prepare(database_url: str) -> tuple[object, bool]:
    """Build and migrate the kit, seed when empty; returns the app and whether it seeded."""
    kit = build_kit(database_url)
    kit.upgrade()
    seeded = seed(kit)
    return create_relief_hub(kit), seeded


def banner(base: str, seeded: bool) -> str:
    """Where to go and how to sign in, in English and Chinese."""
    lines = [
        f"relief_hub is running at {base}/  (relief_hub 运行在 {base}/)",
        "demo data created (已创建演示数据)" if seeded else "demo data found (已有演示数据)",
        f"  JSON API and its OpenAPI document: {base}/docs",
        "  verification codes are printed below (验证码会打印在下方)",
        "Demo sign-ins (演示账号):",
    ]
    for person in PEOPLE:
        org = ORGANISATIONS[person.org]["name"]
        lines.append(
            f"  {org:<24} {person.role:<9} {person.name:<12} {person.email:<40} {person.password}"
        )
    lines.append(f"  sign in at {base}/o/rainbow/sign-in or {base}/o/riverside/sign-in")
    return "\n".join(lines)


def serve(database_url: str, host: str, port: int) -> None:
    """Serve until interrupted."""
    app, seeded = prepare(database_url)
    print(banner(f"http://{host}:{port}", seeded), flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Visitor:
    """A browser without JavaScript: cookies, CSRF tokens from each form, no redirects followed."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect()
        )

    def get(self, path: str) -> tuple[int, str]:
        """GET ``path``: the status and the page."""
        try:
            with self.opener.open(self.base + path, timeout=30) as answer:
                return int(answer.status), answer.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as refused:
            return int(refused.code), refused.read().decode("utf-8", "replace")

    def sign_in(self, org: str, login: str, password: str) -> bool:
        """Sign in through the sign-in page's form."""
        _, page = self.get(f"/o/{org}/sign-in")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        if token is None:
            return False
        body = urllib.parse.urlencode(
            {"csrf_token": token.group(1), "login": login, "password": password}
        ).encode()
        try:
            self.opener.open(self.base + f"/o/{org}/sign-in", data=body, timeout=30)
        except urllib.error.HTTPError as answer:
            return answer.code == 303
        return False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def smoke(database_url: str, host: str, port: int) -> int:
    """Serve on a fresh database, request every page, stop; 0 only if all answered 200."""
    app, _seeded = prepare(database_url)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, name="relief-hub-smoke", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    base = f"http://{host}:{port}"
    failures: list[str] = []
    checked = 0
    try:
        for url, status in check_every_page(base):
            checked += 1
            if status != 200:
                failures.append(f"{status} {url}")
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    print(f"smoke: {checked - len(failures)} of {checked} pages answered 200")
    return 1 if failures or checked == 0 else 0


def check_every_page(base: str) -> list[tuple[str, int]]:
    """Every page of the page contract, as a visitor, a volunteer and staff: (url, status)."""
    results: list[tuple[str, int]] = []

    def visit(who: Visitor, path: str) -> str:
        status, page = who.get(path)
        results.append((base + path, status))
        return page

    visitor = Visitor(base)
    visit(visitor, "/")
    visit(visitor, "/?lang=zh")
    visit(visitor, "/favicon.svg")
    for org in ORGANISATIONS:
        for path in (
            "",
            "register",
            "verify-email",
            "sign-in",
            "forgot-password",
            "reset-password",
            "shifts",
            "rewards",
            "transparency",
        ):
            visit(visitor, f"/o/{org}/{path}")
        people = {p.key: p for p in PEOPLE if p.org == org}
        volunteer, staff = Visitor(base), Visitor(base)
        for who, person in ((volunteer, people["volunteer"]), (staff, people["staff"])):
            if not who.sign_in(org, person.email, person.password):
                results.append((f"{base}/o/{org}/sign-in as {person.email}", 401))
        me = visit(volunteer, f"/o/{org}/me")
        for path in ("shifts", "rewards", "verify", "me?lang=zh"):
            visit(volunteer, f"/o/{org}/{path}")
        for pdf in re.findall(r'data-testid="certificate-pdf-[^"]+" href="([^"]+)"', me):
            visit(volunteer, pdf)
        for path in STAFF_PAGES:
            visit(staff, f"/o/{org}/{path}")
        passes = re.findall(r'data-testid="pass-link-[^"]+" href="([^"]+)"', me)
        links = re.findall(r'data-check-in-url="([^"]+)"', me)
        if not passes or not links:
            results.append((f"{base}/o/{org}/me has no check-in pass", 404))
        for path in passes:
            visit(volunteer, path)
        for link in links:
            visit(staff, link.removeprefix(base).replace("&amp;", "&"))
    return results


if __name__ == "__main__":
    sys.exit(main())
