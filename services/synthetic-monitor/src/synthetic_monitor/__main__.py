"""Allow ``python -m synthetic_monitor``."""

from synthetic_monitor.cli import main

raise SystemExit(main())
