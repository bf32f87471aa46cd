"""Errors the warehouse raises; the CLI turns them into one-line messages."""


class WarehouseError(Exception):
    """Base of the warehouse's errors; ``str()`` says what to do."""


class WarehouseLockedError(WarehouseError):
    """Another process is writing this warehouse."""


class WarehouseCorruptError(WarehouseError):
    """A table's files or transaction log cannot be read."""


class QueryError(WarehouseError):
    """A query the user typed failed (syntax, unknown table or column)."""
