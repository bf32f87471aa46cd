"""knownfix: Microsoft estate logs into a SQL warehouse, known failures into tickets with their fix."""

__version__ = "0.1.0"
