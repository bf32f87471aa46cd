"""Views defined in every DuckDB session once its tables are registered.

DuckDB binds a view when it is created, so views over warehouse tables cannot be made with the
scalar macros (which exist before any table); each builder here gets the session and the names of
the tables it has, creates what it can, and returns the names of the views it created.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from warehouse import identity

ViewBuilder = Callable[[duckdb.DuckDBPyConnection, list[str]], list[str]]

VIEW_BUILDERS: list[ViewBuilder] = [identity.create_views]
