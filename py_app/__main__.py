"""`python -m py_app` runs the command-line interface."""

from py_app.entrypoints.cli import main

raise SystemExit(main())
