"""A class's events in SQLite (WAL mode): one database file in the class's folder, written by the
students' kernels (one server) or by the hub service, read by the teacher's view.

An event is stored once (its id is the primary key: a resent event changes nothing); a commit is
synchronous=FULL, so an event acknowledged survives a killed kernel or a restarted server. The
database is bounded (MAX_BYTES); a full or unwritable store raises StoreError, which the
student's Stepper shows as a quiet notice.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path

from .events import EventError, new_code, normal_code, normal_student, validate

DB_NAME = "class.sqlite3"
MAX_BYTES = 256 * 2**20            # the whole database: ~500,000 events
PAGE = 4096
BUSY_MS = 5000                     # a writer waits this long for another's lock
MAX_ROWS = 500_000                 # events read for one view at most
MAX_PER_STUDENT = 5000             # events one student may send to a class (a pass has ~20)

SCHEMA = """
CREATE TABLE IF NOT EXISTS classes (
  code TEXT PRIMARY KEY, opened DOUBLE PRECISION NOT NULL, closed DOUBLE PRECISION);
CREATE TABLE IF NOT EXISTS events (
  id TEXT PRIMARY KEY, code TEXT NOT NULL REFERENCES classes(code), student TEXT NOT NULL,
  fingerprint TEXT NOT NULL, view TEXT NOT NULL, step INTEGER NOT NULL, writes TEXT NOT NULL,
  kind TEXT NOT NULL, tag TEXT NOT NULL, outcome TEXT NOT NULL, slip TEXT, answer TEXT,
  time DOUBLE PRECISION NOT NULL, received DOUBLE PRECISION NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_class ON events (code, received);
CREATE INDEX IF NOT EXISTS events_by_student ON events (code, student);
CREATE TABLE IF NOT EXISTS owners (
  code TEXT NOT NULL, student TEXT NOT NULL, owner TEXT NOT NULL, PRIMARY KEY (code, student));
"""
FIELDS = ("id", "code", "student", "fingerprint", "view", "step", "writes", "kind", "tag",
          "outcome", "slip", "answer", "time", "received")


class StoreError(Exception):
    """The store cannot take or give events (full, unwritable, damaged): one sentence why."""


class _SQLite:
    """The store's database on this machine: sqlite3, WAL, synchronous=FULL, bounded in size;
    one connection, used by one thread at a time."""

    def __init__(self, path: Path):
        self.where = str(path)
        self.lock = threading.Lock()
        self.db = sqlite3.connect(path, timeout=BUSY_MS / 1000, isolation_level=None,
                                  check_same_thread=False)
        for pragma in (f"busy_timeout = {BUSY_MS}", "journal_mode = WAL", "synchronous = FULL",
                       f"max_page_count = {MAX_BYTES // PAGE}"):
            self.db.execute(f"PRAGMA {pragma}")

    def run(self, sql: str, args: tuple = ()) -> tuple[int, list]:
        with self.lock:
            cur = self.db.execute(sql, args)
            return cur.rowcount, cur.fetchall()

    def close(self):
        self.db.close()


class _Alchemy:
    """Any database SQLAlchemy reaches by URL (PostgreSQL for Zero to JupyterHub): the same SQL,
    its ? placeholders numbered for SQLAlchemy."""

    def __init__(self, url: str):
        import sqlalchemy
        self.sa = sqlalchemy
        self.engine = sqlalchemy.create_engine(url, pool_pre_ping=True)
        self.where = self.engine.url.render_as_string(hide_password=True)

    def run(self, sql: str, args: tuple = ()) -> tuple[int, list]:
        parts = sql.split("?")
        text = parts[0] + "".join(f":p{i}{rest}" for i, rest in enumerate(parts[1:]))
        with self.engine.begin() as conn:
            result = conn.execute(self.sa.text(text), {f"p{i}": a for i, a in enumerate(args)})
            rows = [tuple(r) for r in result] if result.returns_rows else []
            return result.rowcount, rows

    def close(self):
        self.engine.dispose()


class ClassStore:
    """The events of the classes kept in one folder (``BPV_CLASS_DIR`` for a Voilà classroom), or
    in a database named by URL (``ClassStore.from_url``: the hub service)."""

    def __init__(self, folder=None, create: bool = False, url: str | None = None):
        try:
            if url is not None and not url.startswith("sqlite:///"):
                self.folder, self.path = None, None
                self.db = _Alchemy(url)
            else:
                self.folder = Path(url[len("sqlite:///"):]).parent if url else \
                    Path(folder).expanduser()
                self.path = Path(url[len("sqlite:///"):]) if url else self.folder / DB_NAME
                if create and not self.folder.exists():
                    self.folder.mkdir(parents=True)
                    os.chmod(self.folder, 0o700)          # the class's answers: its owner only
                elif not self.path.is_file():
                    raise StoreError(f"no class store in {self.folder} (start one with "
                                     f"`backpropviz class open {self.folder}`)")
                self.db = _SQLite(self.path)
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self.db.run(statement)
        except StoreError:
            raise
        except Exception as e:      # noqa: BLE001 — sqlite3's, SQLAlchemy's or the driver's
            raise StoreError(f"the class store cannot be opened: {type(e).__name__}: "
                             f"{str(e).splitlines()[0][:200] if str(e) else ''}") from None

    @classmethod
    def from_url(cls, url: str) -> "ClassStore":
        """sqlite:////path/class.sqlite3, postgresql://user@host/db, …"""
        return cls(url=url, create=url.startswith("sqlite:///"))

    def close(self) -> None:
        self.db.close()

    @property
    def where(self) -> str:
        return self.db.where

    # --- classes -----------------------------------------------------------------------------------
    def open_class(self) -> str:
        """A new class (a code no other class in the folder has), open for events."""
        for _ in range(20):
            code = new_code()
            if self._write("INSERT INTO classes (code, opened) VALUES (?, ?) ON CONFLICT DO "
                           "NOTHING", (code, time.time())) == 1:
                return code
        raise StoreError("could not find a free class code")

    def classes(self) -> list[dict]:
        rows = self._read("SELECT code, opened, closed FROM classes ORDER BY opened", ())
        return [{"code": c, "opened": o, "closed": x} for c, o, x in rows]

    def is_open(self, code: str) -> bool:
        rows = self._read("SELECT closed FROM classes WHERE code = ?", (normal_code(code),))
        return bool(rows) and rows[0][0] is None

    def close_class(self, code: str) -> None:
        self._write("UPDATE classes SET closed = ? WHERE code = ? AND closed IS NULL",
                    (time.time(), normal_code(code)))

    def reset(self, code: str) -> int:
        """Forget a class's events (the class stays open); returns how many were dropped."""
        code = normal_code(code)
        self._write("DELETE FROM owners WHERE code = ?", (code,))
        return self._write("DELETE FROM events WHERE code = ?", (code,))

    # --- events ------------------------------------------------------------------------------------
    def add(self, event: dict, owner: str | None = None) -> bool:
        """Store one event (validated here); True if new, False if its id was stored before.
        ``owner``: who sent it, as the hub service knows them (a hash of their hub name): a
        pseudonym belongs to the first owner who used it in the class, and no one else may send
        events under it. EventError for a bad event, a closed class or someone else's pseudonym;
        StoreError if it cannot be kept."""
        e = validate(event)
        if not self.is_open(e["code"]):
            raise EventError(f"there is no open class {e['code']}")
        if owner is not None:
            self.claim(e["code"], e["student"], owner)
        if self._read("SELECT count(*) FROM events WHERE code = ? AND student = ?",
                      (e["code"], e["student"]))[0][0] >= MAX_PER_STUDENT:
            raise EventError(f"{MAX_PER_STUDENT} answers from one student are all a class keeps")
        row = [e[f] for f in FIELDS[:-1]]
        row[FIELDS.index("answer")] = None if e["answer"] is None else json.dumps(e["answer"])
        return self._write(f"INSERT INTO events ({', '.join(FIELDS)}) VALUES "
                           f"({', '.join('?' * len(FIELDS))}) ON CONFLICT DO NOTHING",
                           (*row, time.time())) == 1

    def claim(self, code: str, student: str, owner: str) -> None:
        """The pseudonym ``student`` is ``owner``'s in the class (the first to claim it keeps it):
        EventError if it is someone else's."""
        code, student = normal_code(code), normal_student(student)
        if not self.is_open(code):
            raise EventError(f"there is no open class {code}")
        self._write("INSERT INTO owners (code, student, owner) VALUES (?, ?, ?) "
                    "ON CONFLICT DO NOTHING", (code, student, owner))
        mine = self._read("SELECT owner FROM owners WHERE code = ? AND student = ?",
                          (code, student))
        if not mine or mine[0][0] != owner:
            raise EventError(f"the name {student!r} is another student's in this class: choose "
                             f"another")

    def events(self, code: str) -> list[dict]:
        """A class's events in the order they arrived (at most MAX_ROWS)."""
        rows = self._read(f"SELECT {', '.join(FIELDS)} FROM events WHERE code = ? "
                          f"ORDER BY received, id LIMIT {MAX_ROWS}", (normal_code(code),))
        out = []
        for row in rows:
            e = dict(zip(FIELDS, row))
            e["answer"] = None if e["answer"] is None else json.loads(e["answer"])
            out.append(e)
        return out

    def count(self, code: str | None = None) -> int:
        if code is None:
            return self._read("SELECT count(*) FROM events", ())[0][0]
        return self._read("SELECT count(*) FROM events WHERE code = ?",
                          (normal_code(code),))[0][0]

    def forget_before(self, seconds: float) -> int:
        """Drop the events and the closed classes older than ``seconds`` (the retention)."""
        cut = time.time() - seconds
        n = self._write("DELETE FROM events WHERE received < ?", (cut,))
        self._write("DELETE FROM classes WHERE closed IS NOT NULL AND closed < ? AND code NOT IN "
                    "(SELECT DISTINCT code FROM events)", (cut,))
        self._write("DELETE FROM owners WHERE code NOT IN (SELECT code FROM classes)", ())
        return n

    # --- the database, its errors in words ----------------------------------------------------------
    def _write(self, sql: str, args: tuple) -> int:
        try:
            return self.db.run(sql, args)[0]
        except Exception as e:      # noqa: BLE001 — sqlite3's, SQLAlchemy's or the driver's
            said = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            full = "full" in said
            raise StoreError(f"the class store is {'full' if full else 'not writable'} "
                             f"({self.where}: {said})") from None

    def _read(self, sql: str, args: tuple) -> list:
        try:
            return self.db.run(sql, args)[1]
        except Exception as e:      # noqa: BLE001
            said = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            raise StoreError(f"the class store {self.where} cannot be read: {said}") from None


__all__ = ["ClassStore", "EventError", "StoreError", "DB_NAME"]
