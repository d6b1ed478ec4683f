"""Inventory: load NetBox-shaped data into the Lab model and validate it."""
