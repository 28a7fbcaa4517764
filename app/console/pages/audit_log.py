"""The audit log: who did what, filtered and paginated (helper H2)."""
