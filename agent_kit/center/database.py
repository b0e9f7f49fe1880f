"""One small database layer for the two back-ends: SQLite (stdlib, WAL) and PostgreSQL (psycopg 3).

SQL is written once with ``?`` placeholders and types both understand (TEXT, BIGINT, SMALLINT
0/1 for booleans, DOUBLE PRECISION for epoch seconds); :meth:`Database.sql` turns it into
psycopg's ``%s`` style. Connections come from a small pool; each ``transaction()`` commits on
success and rolls back on error. A database that cannot be reached raises
:class:`DatabaseUnavailable` (the API answers 503), one whose disk is full :class:`DatabaseFull`
(503 ``disk_full``); :func:`unavailable` says which a driver's exception is.

SQLite has one writer at a time; when several center processes (``--workers N``) write, a
writer that finds the database locked would sleep in SQLite's busy handler (1, 2, 5 ... 100 ms
steps), which made the tail latency of intake seconds long. So SQLite write transactions of the
center queue on a lock file beside the database (``flock``, woken the moment it is free) and a
thread lock within the process; the busy timeout stays as the fallback for other writers.
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agent_kit.center.data_dir import create_private_file

Params = Sequence[Any]
PG_DISK_FULL = "53100"   # SQLSTATE disk_full (class 53, insufficient resources)
WAL_CHECKPOINT_PAGES = 10_000


class DatabaseUnavailable(Exception):
    """The database cannot be reached or is locked for too long."""


class DatabaseFull(DatabaseUnavailable):
    """The database has no room left: SQLite's ``SQLITE_FULL`` ("database or disk is full"),
    PostgreSQL's SQLSTATE 53100 ``disk_full``, or ENOSPC. Its text is the database's message."""


def unavailable(exc: BaseException) -> DatabaseUnavailable | None:
    """What a driver's exception means for the API: :class:`DatabaseFull` or
    :class:`DatabaseUnavailable` for trouble of the database itself (down, locked, disk full),
    to retry later; None for anything else (a value or statement it refused, a bug)."""
    if isinstance(exc, DatabaseUnavailable):
        return exc
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None and code & 0xFF == sqlite3.SQLITE_FULL:
            return DatabaseFull(str(exc))
        return DatabaseUnavailable(str(exc)) if isinstance(exc, sqlite3.OperationalError) \
            else None
    if isinstance(exc, OSError):
        return (DatabaseFull if exc.errno == errno.ENOSPC else DatabaseUnavailable)(str(exc))
    if _is_pg_operational(exc):
        full = getattr(exc, "sqlstate", None) == PG_DISK_FULL
        return (DatabaseFull if full else DatabaseUnavailable)(_pg_reason(exc))
    return None


class Database:
    """A pool of connections to one SQLite file or one PostgreSQL database."""

    def __init__(self, url: str, pool_size: int = 4) -> None:
        self.url = url
        if url.startswith(("postgresql://", "postgres://")):
            self.dialect = "postgresql"
        elif url.startswith("sqlite:///"):
            self.dialect = "sqlite"
            self.path = Path(url[len("sqlite:///"):])
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # 0600 before SQLite makes it 0644: its -wal and -shm then get 0600 too (SQLite
            # gives them the database file's mode), whatever the umask (data_dir.py)
            create_private_file(self.path)
        else:
            raise ValueError(f"unsupported database URL {url!r}: use postgresql://... or a "
                             "SQLite file path")
        self._pool: queue.LifoQueue[Any] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(pool_size)
        self._sql_cache: dict[str, str] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._lock_fd: int | None = None

    def __repr__(self) -> str:  # never show a password from the URL
        return f"Database({self.dialect})"

    # -- connections ---------------------------------------------------------------------
    def connect(self) -> Any:
        """A new raw connection (the intake writer keeps its own)."""
        try:
            if self.dialect == "sqlite":
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                       check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                # FULL: a commit is on disk (fsync of the WAL) before we acknowledge it.
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("PRAGMA busy_timeout=30000")
                # Checkpoint every ~40 MB of WAL, not SQLite's 4 MB: intake rewrites the same
                # pages (each agent's latest rows) over and over, and a checkpoint (run by the
                # committing writer, inside the write lock) copies each page once however often
                # it changed: 20-30 % more heartbeats/s in docs/BENCHMARKS.md "Center load".
                conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
                return conn
            import psycopg

            return psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except (sqlite3.Error, OSError) as exc:
            raise (unavailable(exc) or DatabaseUnavailable(str(exc))) from None
        except Exception as exc:
            down = unavailable(exc) if _is_pg_operational(exc) else None
            if down is not None:
                raise down from None
            raise

    def checkpoint_truncate(self) -> None:
        """SQLite: copy the WAL into the database file and empty it (a one-off, at start)."""
        if self.dialect != "sqlite":
            return
        conn = self.connect()
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()

    def acquire_write(self) -> None:
        """SQLite: wait for this process's and then every center process's write turn."""
        if self.dialect != "sqlite":
            return
        import fcntl

        self._write_lock.acquire()
        try:
            if self._lock_fd is None:
                self._lock_fd = os.open(f"{self.path}.writelock", os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        except BaseException:
            self._write_lock.release()
            raise

    def release_write(self) -> None:
        if self.dialect != "sqlite":
            return
        import fcntl

        try:
            assert self._lock_fd is not None
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        finally:
            self._write_lock.release()

    def sql(self, text: str) -> str:
        """``?`` placeholders -> the driver's style (cached)."""
        if self.dialect == "sqlite":
            return text
        out = self._sql_cache.get(text)
        if out is None:
            out = text.replace("%", "%%").replace("?", "%s")
            self._sql_cache[text] = out
        return out

    @contextmanager
    def transaction(self, write: bool = False) -> Iterator[Tx]:
        """A transaction on a pooled connection; ``write`` takes SQLite's write lock up front."""
        if not self._slots.acquire(timeout=30):
            raise DatabaseUnavailable("no database connection free for 30 s")
        conn = None
        try:
            try:
                conn = self._pool.get_nowait()
            except queue.Empty:
                conn = self.connect()
            tx = Tx(self, conn)
            try:
                tx.begin(write)
                yield tx
                tx.commit()
            except BaseException:
                tx.rollback_quietly()
                raise
        except Exception as exc:
            down = unavailable(exc) if isinstance(exc, sqlite3.OperationalError) \
                or _is_pg_operational(exc) else None
            if down is None:
                raise
            self._discard(conn)   # possibly broken: not back into the pool
            conn = None
            raise down from None
        finally:
            if conn is not None:
                self._pool.put(conn)
            self._slots.release()

    def _discard(self, conn: Any) -> None:
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken
                conn.close()

    def close(self) -> None:
        if self._lock_fd is not None and self._write_lock.acquire(timeout=1):
            os.close(self._lock_fd)
            self._lock_fd = None
            self._write_lock.release()
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                return


class Tx:
    """One transaction: ``execute``, ``one``, ``all``, with ``?`` placeholders."""

    def __init__(self, db: Database, conn: Any) -> None:
        self.db, self.conn = db, conn
        self._locked = False

    def begin(self, write: bool) -> None:
        if self.db.dialect == "sqlite":
            if write:
                self.db.acquire_write()
                self._locked = True
            try:
                self.conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except BaseException:
                self._unlock()
                raise
        else:
            self.conn.execute("BEGIN")

    def commit(self) -> None:
        try:
            self.conn.execute("COMMIT")
        finally:
            self._unlock()

    def rollback_quietly(self) -> None:
        try:
            with contextlib.suppress(Exception):  # the connection may already be gone
                self.conn.execute("ROLLBACK")
        finally:
            self._unlock()

    def _unlock(self) -> None:
        if self._locked:
            self._locked = False
            self.db.release_write()

    def execute(self, text: str, params: Params = ()) -> Any:
        return self.conn.execute(self.db.sql(text), params)

    def executemany(self, text: str, rows: Sequence[Params]) -> None:
        if self.db.dialect == "sqlite":
            self.conn.executemany(text, rows)
        else:
            with self.conn.cursor() as cur:
                cur.executemany(self.db.sql(text), rows)

    def each(self, text: str, rows: Sequence[Params]) -> list[bool]:
        """Run a statement with ``RETURNING`` once per parameter row, in order; whether each
        returned a row. PostgreSQL gets them in one pipeline (one round trip, not one per
        row); SQLite runs in process, where a statement is cheap."""
        if not rows:
            return []
        if self.db.dialect == "sqlite":
            return [self.conn.execute(text, row).fetchone() is not None for row in rows]
        out = []
        with self.conn.cursor() as cur:
            cur.executemany(self.db.sql(text), rows, returning=True)
            while True:
                out.append(cur.fetchone() is not None)
                if not cur.nextset():
                    break
        return out

    def one(self, text: str, params: Params = ()) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self.execute(text, params).fetchone()
        return row

    def all(self, text: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return list(self.execute(text, params).fetchall())

    def rowcount(self, text: str, params: Params = ()) -> int:
        return int(self.execute(text, params).rowcount)


def _is_pg_operational(exc: BaseException) -> bool:
    try:
        import psycopg
    except ImportError:
        return False
    return isinstance(exc, psycopg.OperationalError | psycopg.errors.AdminShutdown)


def _pg_reason(exc: BaseException) -> str:
    # psycopg messages can echo the connection string; keep only the first line's tail.
    return type(exc).__name__ + ": " + str(exc).splitlines()[0][-200:] if str(exc) else \
        type(exc).__name__
