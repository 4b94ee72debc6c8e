"""HTTP plumbing shared by both services: middleware, errors, health, faults, lifecycle."""
