"""``python -m lookout_stack`` runs the ``lookout`` command."""

from lookout_stack.cli import main

raise SystemExit(main())
