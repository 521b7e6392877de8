"""Specialists as short single-purpose steps with deterministic scaffolding (small models)."""
