"""Self-management reading: Markdown files with front matter, rendered to sanitised HTML.

Content lives in ``portal/selfcare/content/<track>/week-NN.md``. It is written by the service, but it is
still sanitised with nh3 so that a slip in a file can never put script into a patient's page.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from pathlib import Path

import frontmatter
import nh3
from markdown_it import MarkdownIt

CONTENT_DIR = Path(__file__).resolve().parent / "content"
REQUIRED = ("title", "track", "week", "summary", "reading_minutes", "task", "review_due")
ALLOWED_TAGS = {"p", "h2", "h3", "ul", "ol", "li", "strong", "em", "a", "blockquote", "br"}


class ContentError(ValueError):
    pass


@dataclass(frozen=True)
class Reading:
    track: str
    week: int
    title: str
    summary: str
    reading_minutes: int
    task: str
    review_due: dt.date
    html: str
    slug: str


_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False})


def render_markdown(text: str) -> str:
    html = _markdown.render(text)
    return nh3.clean(html, tags=ALLOWED_TAGS, attributes={"a": {"href"}}, url_schemes={"https", "tel"})


def parse_reading(path: Path) -> Reading:
    post = frontmatter.load(path)
    missing = [key for key in REQUIRED if key not in post.metadata]
    if missing:
        raise ContentError(f"{path}: front matter lacks {', '.join(missing)}")
    meta = post.metadata
    review_due = meta["review_due"]
    if not isinstance(review_due, dt.date):
        raise ContentError(f"{path}: review_due must be a date (YYYY-MM-DD)")
    return Reading(
        track=str(meta["track"]),
        week=int(meta["week"]),
        title=str(meta["title"]),
        summary=str(meta["summary"]),
        reading_minutes=int(meta["reading_minutes"]),
        task=str(meta["task"]),
        review_due=review_due,
        html=render_markdown(post.content),
        slug=path.stem,
    )


@functools.cache
def load_library(content_dir: Path = CONTENT_DIR) -> dict[tuple[str, int], Reading]:
    """Every reading, keyed by (track, week). Parsed once per process."""
    library: dict[tuple[str, int], Reading] = {}
    for path in sorted(content_dir.glob("*/*.md")):
        reading = parse_reading(path)
        if reading.track != path.parent.name:
            raise ContentError(f"{path}: track {reading.track!r} does not match its folder")
        library[(reading.track, reading.week)] = reading
    return library
