"""Prepared reads: a prebuilt Core SELECT compiled once per dialect, then run as its SQL string.

SQLAlchemy's execution path costs about a tenth of a millisecond for every statement it runs (the cache key,
the compiled-statement lookup, the bind and result set-up), several times what SQLite takes to answer the
small reads a page makes. For the few statements every page runs, ``read`` does that work once: it
compiles the statement for the connection's dialect, keeps the SQL text, the order of its parameters and the
bind and result processors of its types, and then only fills in the values and converts the rows.

The SQL runs on the connection's own DBAPI cursor, inside the session's transaction; a database error comes back
as SQLAlchemy's ``DBAPIError``, as from any other statement. While something listens to the engine's statements
(the query-count tests do), it runs through ``Connection.exec_driver_sql`` instead, so that the listener hears it.

An expanding parameter (``bindparam(..., expanding=True)``, an ``IN`` list) makes one SQL text for each
length of list it is given; the texts are kept for the lengths seen, up to ``EXPANSIONS_KEPT`` of them.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from sqlalchemy import Connection, Select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError

EXPANSIONS_KEPT = 256


class Rows(list):
    """The rows of a prepared read (named tuples: attribute access, unpacking), with the result methods the
    portal uses."""

    def all(self) -> Rows:
        return self

    def first(self) -> Any:
        return self[0] if self else None

    def scalar(self) -> Any:
        return self[0][0] if self else None


class _Placeholder(NamedTuple):
    """Stands in for a caller's value while the statement is compiled: the parameter's name, and for an
    expanding parameter the position in its list."""

    name: str
    index: int | None


class _Form(NamedTuple):
    """One SQL text of a statement, ready to run."""

    sql: str
    positional: bool
    # For each parameter, in the SQL's order: its name in the SQL, the caller's name and list position (or
    # the statement's own constant value), and the type's bind processor.
    parameters: tuple[tuple[str, _Placeholder | None, Any, Callable[[Any], Any] | None], ...]


class _Compiled(NamedTuple):
    compiled: Any
    expanding: tuple[str, ...]
    caller_names: frozenset[str]
    make_row: Callable[[Iterable[Any]], tuple]
    result_processors: tuple[tuple[int, Callable[[Any], Any]], ...]


def read(connection: Connection, statement: Select, params: Mapping[str, Any]) -> Rows:
    """Run ``statement`` (built once, at import time: it is the cache's key) with ``params`` on ``connection``."""
    dialect = connection.dialect
    compiled = _compile(statement, dialect)
    missing = compiled.caller_names - params.keys()
    if missing:
        raise KeyError(f"no value for {', '.join(sorted(missing))}")
    form = _expand(statement, dialect, tuple(len(params[name]) for name in compiled.expanding))
    values = [_value(params, placeholder, constant, process) for _, placeholder, constant, process
              in form.parameters]
    arguments = tuple(values) if form.positional else {
        name: value for (name, *_), value in zip(form.parameters, values, strict=True)}
    rows = Rows()
    processors = compiled.result_processors
    make_row = compiled.make_row
    for raw in _fetch(connection, form.sql, arguments):
        if processors:
            raw = list(raw)
            for position, process in processors:
                raw[position] = process(raw[position])
        rows.append(make_row(raw))
    return rows


def _fetch(connection: Connection, sql: str, arguments: Any) -> list[tuple]:
    """The raw rows. Straight on the DBAPI cursor, unless something listens to the engine's statements (the
    query-count tests do): then through ``exec_driver_sql``, so that it hears this one too."""
    if connection.dispatch.before_cursor_execute or connection.dispatch.after_cursor_execute:
        result = connection.exec_driver_sql(sql, arguments)
        try:
            return result.cursor.fetchall()
        finally:
            result.close()
    dbapi_connection = connection.connection.dbapi_connection
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(sql, arguments)
        return cursor.fetchall()
    except connection.dialect.loaded_dbapi.Error as error:
        raise DBAPIError.instance(sql, arguments, error, connection.dialect.loaded_dbapi.Error,
                                  dialect=connection.dialect) from error
    finally:
        cursor.close()


def _value(params: Mapping[str, Any], placeholder: _Placeholder | None, constant: Any,
           process: Callable[[Any], Any] | None) -> Any:
    if placeholder is None:
        value = constant
    elif placeholder.index is None:
        value = params[placeholder.name]
    else:
        value = params[placeholder.name][placeholder.index]
    return process(value) if process is not None and value is not None else value


@functools.lru_cache(maxsize=EXPANSIONS_KEPT)
def _compile(statement: Select, dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)
    # The caller's parameters: those with no value of their own (constants, such as status == "active", carry it).
    given = {name: bind for name, bind in compiled.binds.items() if bind.value is None and bind.callable is None}
    if any(bind.literal_execute for bind in compiled.binds.values()):
        raise ValueError("a prepared read takes no literal_execute parameters")
    columns = list(statement.selected_columns)
    result_processors = []
    for position, column in enumerate(columns):
        process = column.type.dialect_impl(dialect).result_processor(dialect, None)
        if process is not None:
            result_processors.append((position, process))
    row_type = collections.namedtuple("Row", [column.key for column in columns], rename=True)
    return _Compiled(
        compiled=compiled,
        expanding=tuple(name for name, bind in given.items() if bind.expanding),
        caller_names=frozenset(given),
        make_row=row_type._make,
        result_processors=tuple(result_processors),
    )


@functools.lru_cache(maxsize=EXPANSIONS_KEPT)
def _expand(statement: Select, dialect: Dialect, lengths: tuple[int, ...]) -> _Form:
    compiled = _compile(statement, dialect)
    placeholders: dict[str, Any] = {name: _Placeholder(name, None) for name in compiled.caller_names}
    for name, length in zip(compiled.expanding, lengths, strict=True):
        placeholders[name] = [_Placeholder(name, index) for index in range(length)]
    state = compiled.compiled.construct_expanded_state(placeholders)
    order = state.positiontup if state.positiontup is not None else list(state.parameters)
    parameters = []
    for name in order:
        given = state.parameters[name]
        placeholder = given if isinstance(given, _Placeholder) else None
        # The expanded state carries the processors of the parameters it expanded; the others are the types'.
        process = state.processors.get(name)
        if process is None and name in compiled.compiled.binds:
            process = compiled.compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        parameters.append((name, placeholder, None if placeholder else given, process))
    return _Form(sql=state.statement, positional=state.positiontup is not None, parameters=tuple(parameters))
