"""The shipped networks (``*.tflite``) and their cards (``*.json``).

This folder stays at the repository's top level, where training writes and the app reads;
``pyproject.toml`` installs it as the package ``digitrec.shipped``, so that an installed
digitrec carries its networks (:mod:`digitrec.store` finds them either way)."""
