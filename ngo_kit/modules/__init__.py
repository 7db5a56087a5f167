"""ngo-kit's built-in modules. Each is a plugin, found through the ``ngo_kit`` entry-point group."""
