"""Business logic. Views, jobs and CLI commands call these; nothing here knows about HTTP."""
