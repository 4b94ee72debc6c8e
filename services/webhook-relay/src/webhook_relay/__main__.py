"""Run the relay's command line: ``python -m webhook_relay``."""

from __future__ import annotations

from webhook_relay.cli import main

raise SystemExit(main())
