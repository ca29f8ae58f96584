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
import time
from pathlib import Path

from .events import EventError, new_code, normal_code, validate

DB_NAME = "class.sqlite3"
MAX_BYTES = 256 * 2**20            # the whole database: ~500,000 events
PAGE = 4096
BUSY_MS = 5000                     # a writer waits this long for another's lock
MAX_ROWS = 500_000                 # events read for one view at most

SCHEMA = """
CREATE TABLE IF NOT EXISTS classes (
  code TEXT PRIMARY KEY, opened REAL NOT NULL, closed REAL);
CREATE TABLE IF NOT EXISTS events (
  id TEXT PRIMARY KEY, code TEXT NOT NULL REFERENCES classes(code), student TEXT NOT NULL,
  fingerprint TEXT NOT NULL, view TEXT NOT NULL, step INTEGER NOT NULL, writes TEXT NOT NULL,
  kind TEXT NOT NULL, tag TEXT NOT NULL, outcome TEXT NOT NULL, slip TEXT, answer TEXT,
  time REAL NOT NULL, received REAL NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_class ON events (code, received);
"""
FIELDS = ("id", "code", "student", "fingerprint", "view", "step", "writes", "kind", "tag",
          "outcome", "slip", "answer", "time", "received")


class StoreError(Exception):
    """The store cannot take or give events (full, unwritable, damaged): one sentence why."""


class ClassStore:
    """The events of the classes kept in one folder (``BPV_CLASS_DIR`` for a Voilà classroom)."""

    def __init__(self, folder, create: bool = False):
        self.folder = Path(folder).expanduser()
        self.path = self.folder / DB_NAME
        try:
            if create:
                self.folder.mkdir(parents=True, exist_ok=True)
                os.chmod(self.folder, 0o700)          # the class's answers: its owner only
            elif not self.path.is_file():
                raise StoreError(f"no class store in {self.folder} (start one with "
                                 f"`backpropviz class open {self.folder}`)")
            self.db = sqlite3.connect(self.path, timeout=BUSY_MS / 1000, isolation_level=None,
                                      check_same_thread=False)
            self.db.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = FULL")
            self.db.execute(f"PRAGMA max_page_count = {MAX_BYTES // PAGE}")
            self.db.executescript(SCHEMA)
        except sqlite3.Error as e:
            raise StoreError(f"the class store {self.path} cannot be opened: {e}") from None

    def close(self) -> None:
        self.db.close()

    # --- classes -----------------------------------------------------------------------------------
    def open_class(self) -> str:
        """A new class (a code no other class in the folder has), open for events."""
        for _ in range(20):
            code = new_code()
            try:
                self.db.execute("INSERT INTO classes (code, opened) VALUES (?, ?)",
                                (code, time.time()))
                return code
            except sqlite3.IntegrityError:
                continue
            except sqlite3.Error as e:
                raise StoreError(f"could not open a class in {self.path}: {e}") from None
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
        return self._write("DELETE FROM events WHERE code = ?", (normal_code(code),))

    # --- events ------------------------------------------------------------------------------------
    def add(self, event: dict, student: str | None = None) -> bool:
        """Store one event (validated here); True if new, False if its id was stored before.
        ``student``: the name the sender is known by (the hub service), which the event must
        carry. EventError for a bad event or a closed class; StoreError if it cannot be kept."""
        e = validate(event)
        if student is not None and e["student"] != student:
            raise EventError("an event is sent by its own student only")
        if not self.is_open(e["code"]):
            raise EventError(f"there is no open class {e['code']}")
        row = [e[f] for f in FIELDS[:-1]]
        row[FIELDS.index("answer")] = None if e["answer"] is None else json.dumps(e["answer"])
        return self._write(f"INSERT OR IGNORE INTO events ({', '.join(FIELDS)}) VALUES "
                           f"({', '.join('?' * len(FIELDS))})", (*row, time.time())) == 1

    def events(self, code: str) -> list[dict]:
        """A class's events in the order they arrived (at most MAX_ROWS)."""
        rows = self._read(f"SELECT {', '.join(FIELDS)} FROM events WHERE code = ? "
                          f"ORDER BY received, rowid LIMIT {MAX_ROWS}", (normal_code(code),))
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
        return n

    # --- SQLite, its errors in words ---------------------------------------------------------------
    def _write(self, sql: str, args: tuple) -> int:
        try:
            return self.db.execute(sql, args).rowcount
        except sqlite3.OperationalError as e:
            full = "full" in str(e)
            raise StoreError(f"the class store is {'full' if full else 'not writable'} "
                             f"({self.path}: {e})") from None
        except sqlite3.Error as e:
            raise StoreError(f"the class store {self.path} failed: {e}") from None

    def _read(self, sql: str, args: tuple) -> list:
        try:
            return self.db.execute(sql, args).fetchall()
        except sqlite3.Error as e:
            raise StoreError(f"the class store {self.path} cannot be read: {e}") from None


__all__ = ["ClassStore", "EventError", "StoreError", "DB_NAME"]
