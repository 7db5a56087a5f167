"""relief_hub: the flagship example web app, composing every ngo-kit module and both bridge plugins.

``app.build_kit(database_url)`` builds the kit, ``app.create_relief_hub(kit)`` the FastAPI app
(the JSON API under ``/api`` plus server-rendered pages in English and Chinese),
``seed.seed(kit)`` the demo data, and ``demo.py`` runs it all (``make demo``).
"""
