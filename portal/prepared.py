"""Prepared reads: a prebuilt Core SELECT compiled once per dialect, then run as its SQL string.

SQLAlchemy's execution path costs about a tenth of a millisecond for every statement it runs (the cache key,
the compiled-statement lookup, the bind and result set-up), several times what SQLite takes to answer the
small reads a page makes. For the few statements every page runs, ``read`` does that work once: it
compiles the statement for the connection's dialect, keeps the SQL text, the order of its parameters and the
bind and result processors of its types, and then only fills in the values and converts the rows.

The SQL runs on the connection's own DBAPI cursor, inside the session's transaction (so run it on
``session.connection()``, as ``portal.db.read_rows`` does, never on a bare connection that has not begun). Errors
come back as SQLAlchemy's: a bad value as ``StatementError``, a database error as ``DBAPIError``, and a lost
connection is invalidated, as SQLAlchemy's own execution does. While something listens to the engine's
statements (the query-count tests do), the SQL runs through ``Connection.exec_driver_sql`` instead, so that the
listener hears it.

What it takes: a SELECT whose parameters are plain ``bindparam``s and constants. A parameter with a value of its
own may be given another by the caller, as with SQLAlchemy; an expanding one (``bindparam(..., expanding=True)``,
an ``IN`` list) takes any collection. A list is sent padded to the next power of two by repeating its last value
(which changes no ``IN``), so a statement has one SQL text for each such length, a dozen at most, rather than one
for every length a caller happens to send; the texts are kept, up to ``FORMS_KEPT`` of them across all
statements. A statement with a ``callable_``
or ``literal_execute`` parameter is refused. Every row is read into memory: for scans of a whole table, use
SQLAlchemy's own execution, which streams.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, Select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, StatementError

FORMS_KEPT = 256


class Rows(list):
    """The rows of a prepared read (named tuples: attribute access, unpacking), with the result methods the
    portal uses."""

    def all(self) -> Rows:
        return self

    def first(self) -> Any:
        return self[0] if self else None

    def scalar(self) -> Any:
        return self[0][0] if self else None


class _Placeholder:
    """Stands in for a caller's value while the statement is compiled: the parameter's name, and for an
    expanding parameter the position in its list. Not a tuple: SQLAlchemy would read a tuple as a row value."""

    __slots__ = ("name", "index")

    def __init__(self, name: str, index: int | None) -> None:
        self.name = name
        self.index = index


class _Parameter(NamedTuple):
    """One parameter of a SQL text, in the text's order."""

    name: str  # its name in the SQL (the key of a named paramstyle)
    placeholder: _Placeholder | None  # where the caller's value is, for a parameter without a value of its own
    constant: Any  # otherwise, the statement's own value, which the caller may replace under ``name``
    process: Callable[[Any], Any] | None  # the type's bind processor


class _Form(NamedTuple):
    """One SQL text of a statement, ready to run."""

    sql: str
    positional: bool
    parameters: tuple[_Parameter, ...]


class _Compiled(NamedTuple):
    compiled: Any
    required: frozenset[str]  # the caller must give these
    expanding: tuple[str, ...]  # the required ones that take a list
    make_row: Callable[[Iterable[Any]], tuple]
    types: tuple[Any, ...]  # the result columns' types, for their processors


def read(connection: Connection, statement: Select, params: Mapping[str, Any]) -> Rows:
    """Run ``statement`` (built once, at import time: it is the cache's key) with ``params`` on ``connection``."""
    dialect = connection.dialect
    compiled = _compile(statement, dialect)
    missing = compiled.required - params.keys()
    if missing:
        raise KeyError(f"no value for {', '.join(sorted(missing))}")
    lists = {name: _padded(list(params[name])) for name in compiled.expanding}
    form = _expand(statement, dialect, tuple(len(lists[name]) for name in compiled.expanding))
    try:
        values = [_value(parameter, params, lists) for parameter in form.parameters]
    except Exception as error:
        raise StatementError(f"a value could not be sent: {error}", form.sql, dict(params), error) from error
    arguments = tuple(values) if form.positional else {
        parameter.name: value for parameter, value in zip(form.parameters, values, strict=True)}
    raw_rows, description = _fetch(connection, form.sql, arguments)
    processors = _result_processors(statement, dialect, tuple(column[1] for column in description or ()))
    make_row = compiled.make_row
    rows = Rows()
    for raw in raw_rows:
        if processors:
            raw = list(raw)
            for position, process in processors:
                raw[position] = process(raw[position])
        rows.append(make_row(raw))
    return rows


def _padded(values: list) -> list:
    """``values`` made up to a power of two in length with copies of the last one: the same IN list."""
    if len(values) > 1:
        values.extend(values[-1:] * ((1 << (len(values) - 1).bit_length()) - len(values)))
    return values


def _value(parameter: _Parameter, params: Mapping[str, Any], lists: dict[str, list]) -> Any:
    placeholder = parameter.placeholder
    if placeholder is None:
        value = params.get(parameter.name, parameter.constant)
    elif placeholder.index is None:
        value = params[placeholder.name]
    else:
        value = lists[placeholder.name][placeholder.index]
    return parameter.process(value) if parameter.process is not None and value is not None else value


def _fetch(connection: Connection, sql: str, arguments: Any) -> tuple[list[Sequence[Any]], Any]:
    """The raw rows and the cursor's description. Straight on the DBAPI cursor, unless something listens to the
    engine's statements: then through ``exec_driver_sql``, so that it hears this one too."""
    if connection.dispatch.before_cursor_execute or connection.dispatch.after_cursor_execute:
        result = connection.exec_driver_sql(sql, arguments)
        try:
            return result.cursor.fetchall(), result.cursor.description
        finally:
            result.close()
    dialect = connection.dialect
    dbapi_connection = connection.connection.dbapi_connection
    cursor = None
    try:
        cursor = dbapi_connection.cursor()
        cursor.execute(sql, arguments)
        return cursor.fetchall(), cursor.description
    except dialect.loaded_dbapi.Error as error:
        # As SQLAlchemy's own execution does: a lost connection is invalidated, so the session's rollback and
        # the pool carry on with a new one, and the error says so.
        lost = dialect.is_disconnect(error, dbapi_connection, cursor)
        wrapped = DBAPIError.instance(sql, arguments, error, dialect.loaded_dbapi.Error,
                                      connection_invalidated=lost, dialect=dialect)
        if lost:
            connection.invalidate(wrapped)
        raise wrapped from error
    finally:
        if cursor is not None:
            cursor.close()


@functools.lru_cache(maxsize=FORMS_KEPT)
def _compile(statement: Select, dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)
    binds = compiled.binds
    if any(bind.callable is not None or bind.literal_execute for bind in binds.values()):
        raise ValueError("a prepared read takes no callable_ or literal_execute parameters")
    columns = list(statement.selected_columns)
    row_type = collections.namedtuple("Row", [column.key for column in columns], rename=True)
    required = {name for name, bind in binds.items() if bind.required}
    return _Compiled(
        compiled=compiled,
        required=frozenset(required),
        expanding=tuple(name for name in required if binds[name].expanding),
        make_row=row_type._make,
        types=tuple(column.type for column in columns),
    )


@functools.lru_cache(maxsize=FORMS_KEPT)
def _result_processors(statement: Select, dialect: Dialect, type_codes: tuple[Any, ...]
                       ) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
    """Each result column's processor, for the type codes the driver gave (PostgreSQL's numerics need them)."""
    types = _compile(statement, dialect).types
    processors = []
    for position, column_type in enumerate(types):
        code = type_codes[position] if position < len(type_codes) else None
        process = column_type.dialect_impl(dialect).result_processor(dialect, code)
        if process is not None:
            processors.append((position, process))
    return tuple(processors)


@functools.lru_cache(maxsize=FORMS_KEPT)
def _expand(statement: Select, dialect: Dialect, lengths: tuple[int, ...]) -> _Form:
    compiled = _compile(statement, dialect)
    placeholders: dict[str, Any] = {name: _Placeholder(name, None) for name in compiled.required}
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
        parameters.append(_Parameter(name, placeholder, None if placeholder else given, process))
    return _Form(sql=state.statement, positional=state.positiontup is not None, parameters=tuple(parameters))
