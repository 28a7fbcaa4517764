"""Customers: search and filter, the 360 page, merge / unmerge, suggestions (helper H2)."""
