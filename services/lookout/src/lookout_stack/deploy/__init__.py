"""Deploy the repo's configs to an environment: overlays, render, diff, apply."""
