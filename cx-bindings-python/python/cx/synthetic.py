"""Seeded synthetic data: the tour's world of a mobile operator, and the telco arbitration
scenarios of the benchmarks. The same arguments give the same data."""

from cx._native import Telco, World, telco, world

__all__ = ["Telco", "World", "telco", "world"]
