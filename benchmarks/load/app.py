"""The app the load test serves: relief_hub's API, as each uvicorn worker process builds it.

Every setting comes from the ``NGO_KIT_*`` environment that ``run.py`` prepares (database,
``production`` environment, a random secret, the SMTP channel, outbox dispatch), so the worker
processes and the seeding process build the very same kit. With ``examples/relief_hub`` in the
tree (and ``LOAD_APP`` not ``kit``) the app is its ``create_relief_hub(kit)`` over its modules
and plugins; otherwise the kit is composed here the way relief_hub composes it, the four
modules and the bridges ``hours_points`` and ``rewards_stock``, and served by
``ngo_kit.web.create_app``. Either way ``/api`` is exactly ``ngo_kit.web.create_app(kit)``.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

from fastapi import FastAPI
from ngo_kit_smtp import SmtpChannel

from ngo_kit import Kit, KitSettings
from ngo_kit.web import create_app

ROOT = Path(__file__).resolve().parents[2]
#: relief_hub's modules: the four built-ins and the bridges hours_points and rewards_stock.
MODULES = ("registration", "points", "inventory", "volunteer", "hours_points", "rewards_stock")


def relief_hub() -> ModuleType | None:
    """``examples.relief_hub.app``, unless ``LOAD_APP=kit`` or the example is not in the tree."""
    wanted = os.environ.get("LOAD_APP", "auto")
    if wanted == "kit" or not (ROOT / "examples" / "relief_hub" / "app.py").is_file():
        if wanted == "relief_hub":
            raise SystemExit("LOAD_APP=relief_hub, but examples/relief_hub/app.py is missing")
        return None
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module("examples.relief_hub.app")


def build_kit(database_url: str | None = None) -> Kit:
    """relief_hub's kit over ``database_url`` (default: ``NGO_KIT_DATABASE_URL``).

    relief_hub composes its plugins by hand (no autoload), so the production channel, the SMTP
    plugin configured by ``NGO_KIT_SMTP_*``, is added here: without it a production kit refuses
    to start, because registration and volunteer send messages.
    """
    settings = KitSettings()
    example = relief_hub()
    if example is None:
        return Kit(database_url, modules=MODULES, settings=settings)
    kit: Kit = example.build_kit(
        database_url or settings.database_url,
        plugins=[SmtpChannel()],
        **settings.model_dump(exclude={"database_url"}),
    )
    return kit


def create() -> FastAPI:
    """The uvicorn factory (``--factory load.app:create``): relief_hub's app over a new kit.

    Messages are delivered by ``ngo-kit outbox work`` processes or after each commit
    (``NGO_KIT_OUTBOX_DISPATCH_AFTER_COMMIT``), never by a thread in every app process.
    """
    kit = build_kit(os.environ.get("NGO_KIT_DATABASE_URL"))
    example = relief_hub()
    if example is not None:
        app: FastAPI = example.create_relief_hub(kit, deliver_messages=False)
        return app
    return create_app(kit, title="relief_hub (load test)")
