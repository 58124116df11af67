"""Composition: the engine (fire lifecycle), the LinkServer object, scheduling, plugins."""
