"""Run ``python -m lookout_demo``: the same as the ``lookout-demo`` command."""

from lookout_demo.cli import main

raise SystemExit(main())
