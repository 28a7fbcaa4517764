"""Alert rules: list, create and edit per kind (helper H2)."""
