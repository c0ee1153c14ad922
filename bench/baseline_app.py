"""The baseline the benchmarks compare against: the portal's stack doing the least a real page does.

Flask, SQLAlchemy 2 and Jinja, on an engine built by ``portal.db.make_engine`` (so SQLite gets the same
pragmas as the portal, and reads with the same plain BEGIN as the portal's read-only page views: the
comparison must not hand the portal a lock advantage). Each request opens one transaction, runs one query
returning 20 rows and renders them with a small template. The table is the baseline's own, created and
filled by ``prepare_database`` (the bench calls it before serving).

``POST /items`` is the write baseline: one transaction inserting one row.

Serve it with ``gunicorn 'bench.baseline_app:create_app()'`` and DATABASE_URL set.
"""

from __future__ import annotations

import os

from flask import Flask, redirect, render_template
from jinja2 import DictLoader
from sqlalchemy import Integer, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from portal.db import make_engine

ROWS_SHOWN = 20
ROWS_STORED = 200

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Baseline items</title></head>
<body>
<main>
<h1>Items</h1>
<table>
  <thead><tr><th>Number</th><th>Name</th><th>Quantity</th></tr></thead>
  <tbody>
  {% for item in items %}
  <tr><td>{{ item.id }}</td><td>{{ item.name }}</td><td>{{ item.quantity }}</td></tr>
  {% endfor %}
  </tbody>
</table>
</main>
</body>
</html>
"""


class Base(DeclarativeBase):
    pass


class BenchItem(Base):
    __tablename__ = "bench_item"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    quantity: Mapped[int] = mapped_column(Integer)


def prepare_database(url: str) -> None:
    """Create the baseline's table and fill it (again, from empty)."""
    engine = make_engine(url)
    try:
        Base.metadata.drop_all(engine)
        Base.metadata.create_all(engine)
        with sessionmaker(engine)() as session, session.begin():
            session.add_all(
                BenchItem(id=n, name=f"Item number {n} <& co>", quantity=(n * 37) % 101)
                for n in range(1, ROWS_STORED + 1)
            )
    finally:
        engine.dispose()


def create_app(database_url: str | None = None) -> Flask:
    app = Flask(__name__, static_folder=None)
    app.jinja_options = {"loader": DictLoader({"items.html": TEMPLATE}), "autoescape": True}
    engine = make_engine(database_url or os.environ["DATABASE_URL"])
    sessions = sessionmaker(engine.execution_options(sqlite_begin="DEFERRED"), expire_on_commit=False)
    app.extensions["bench_engine"] = engine

    @app.get("/")
    def items():
        with sessions() as session, session.begin():
            rows = session.scalars(select(BenchItem).order_by(BenchItem.id).limit(ROWS_SHOWN)).all()
            return render_template("items.html", items=rows)

    @app.post("/items")
    def add_item():
        # The write baseline: one transaction inserting one row, answered with a redirect like a form POST.
        with sessions() as session, session.begin():
            session.add(BenchItem(name="Added item", quantity=1))
        return redirect("/", code=303)

    return app
