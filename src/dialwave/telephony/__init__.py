"""Carriers: one Protocol (base.py), one module per carrier."""
