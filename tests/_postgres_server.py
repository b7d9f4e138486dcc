"""A throwaway PostgreSQL server for one test session, when ``LEDGER_TEST_POSTGRES_URL`` is unset.

Why: ``make test`` on a fresh clone, with no environment variables, must run the PostgreSQL half
of the suite too. Pointing it at a machine's own server would need a database, a role and trust
authentication set up by hand; instead, when the server binaries are installed (Debian's
``postgresql``: ``/usr/lib/postgresql/<version>/bin``), the suite makes its own cluster with
``initdb`` in a fresh temporary directory, starts it with ``pg_ctl`` on a free loopback port
(its Unix socket in that directory too, never ``/var/run/postgresql``), so it coexists with any
server already on 5432, and stops it and removes the directory when the session ends.

Why not pytest-postgresql: it runs ``initdb``/``pg_ctl`` as the current user, and this suite
runs as root on CI and developer machines, which PostgreSQL refuses ("pg_ctl: cannot be run as
root"). Here, as root, every server command runs as the ``postgres`` system user (``runuser``),
who owns the temporary directory; the tests themselves connect over TCP as the ``postgres``
superuser with trust authentication, so child processes need nothing but the URL string.

Nothing is left behind: ``stop`` tries ``pg_ctl stop -m fast``, then ``-m immediate``, then
SIGKILL from ``postmaster.pid``; an ``atexit`` hook backs up the fixture's teardown; and a server
whose test process was killed outright (SIGKILL leaves no teardown) is found by the owner pid
it recorded and removed by the next session that starts one.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

#: Name prefix of the temporary directories, so a later session can find stale ones.
DIR_PREFIX = "ledger-test-pg-"
#: Records the pid of the test process that owns a server (see ``_sweep_stale``).
OWNER_FILE = "owner.pid"
#: The system user PostgreSQL runs as when the tests run as root.
SERVER_USER = "postgres"
#: The database the tests use, as on CI (its schemas are made and dropped per test).
DATABASE = "test"
#: Settings of a throwaway server. ``fsync`` stays on: nothing here is timed.
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "300",  # many connections across processes (concurrency tests)
    "logging_collector": "off",
    "log_destination": "'stderr'",
}
#: Seconds allowed for ``initdb`` and for ``pg_ctl start``/``stop``.
TIMEOUT = 60
#: Ports tried: a free port can be taken by someone else before the server binds it.
PORT_ATTEMPTS = 5
#: Unix socket paths are limited to 107 bytes; ``<dir>/.s.PGSQL.<port>`` must fit.
MAX_SOCKET_DIR = 80


class ServerUnavailable(Exception):
    """No PostgreSQL server binaries (or no user to run them as): the PostgreSQL cases skip."""


def find_bin_dir() -> Path | None:
    """The directory of ``initdb``, ``pg_ctl`` and ``postgres``: newest Debian version first."""

    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.name
        return (
            tuple(int(part) for part in name.split(".")) if name.replace(".", "").isdigit() else ()
        )

    candidates = [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version)]
    candidates.reverse()
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for directory in candidates:
        if all(os.access(directory / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")):
            return directory
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ThrowawayServer:
    """One PostgreSQL cluster in a temporary directory; ``start`` it, then ``stop`` it."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.owner_pid = os.getpid()
        self.as_user: list[str] = []
        self.user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self.user = pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise ServerUnavailable(
                    f"PostgreSQL refuses to run as root and there is no {SERVER_USER!r} user"
                ) from None
            runuser = shutil.which("runuser")
            if runuser:
                self.as_user = [runuser, "-u", SERVER_USER, "--"]
            else:
                su = shutil.which("su") or "su"
                self.as_user = [su, SERVER_USER, "-s", "/bin/sh", "-c"]
        self.directory: Path | None = None
        self.port: int | None = None
        self.running = False

    # -- paths and commands --------------------------------------------------------------------

    @property
    def data(self) -> Path:
        assert self.directory is not None
        return self.directory / "data"

    @property
    def log(self) -> Path:
        assert self.directory is not None
        return self.directory / "server.log"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run a server tool (``initdb``, ``pg_ctl``) as the server's user; never raises on exit."""
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_user and self.as_user[-1] == "-c":  # su: one shell command line
            command = [*self.as_user, shlex.join(command)]
        else:
            command = [*self.as_user, *command]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C")
        return subprocess.run(
            command,
            cwd=self.directory,  # the server's user may not be allowed into the caller's cwd
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    # -- lifecycle -----------------------------------------------------------------------------

    def _make_directory(self) -> Path:
        base = tempfile.gettempdir()
        if len(base) > MAX_SOCKET_DIR - len(DIR_PREFIX) - 10:
            base = "/tmp"
        directory = Path(tempfile.mkdtemp(prefix=DIR_PREFIX, dir=base))
        (directory / OWNER_FILE).write_text(f"{self.owner_pid}\n")
        if self.user is not None:
            for path in (directory, directory / OWNER_FILE):
                os.chown(path, self.user.pw_uid, self.user.pw_gid)
        return directory

    def start(self) -> ThrowawayServer:
        """``initdb``, then ``pg_ctl start`` on a free port, then create the test database."""
        _sweep_stale(self)
        self.directory = self._make_directory()
        atexit.register(self.stop)
        try:
            self._initdb()
            self._start_on_free_port()
            self._create_database()
        except BaseException:
            self.stop()
            raise
        return self

    def _initdb(self) -> None:
        failures = []
        for locale in ("C.UTF-8", "C"):  # C.UTF-8 as on Debian's clusters, C where it is missing
            result = self._run(
                "initdb",
                "--pgdata",
                str(self.data),
                "--username=postgres",
                "--auth=trust",
                "--encoding=UTF8",
                f"--locale={locale}",
                "--no-sync",  # the cluster is thrown away
            )
            if result.returncode == 0:
                break
            failures.append(f"--locale={locale}: {result.stdout}{result.stderr}")
            shutil.rmtree(self.data, ignore_errors=True)
        else:
            raise RuntimeError("initdb failed:\n" + "\n".join(failures))
        assert self.directory is not None
        socket_dir = str(self.directory).replace("'", "''")
        settings = {**SETTINGS, "unix_socket_directories": f"'{socket_dir}'"}
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# tests/_postgres_server.py: a throwaway server for one test session\n")
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())

    def _start_on_free_port(self) -> None:
        failures = []
        for _ in range(PORT_ATTEMPTS):
            self.port = _free_port()
            result = self._run(
                "pg_ctl",
                "start",
                "--wait",
                f"--timeout={TIMEOUT}",
                "--pgdata",
                str(self.data),
                "--log",
                str(self.log),
                "-o",
                f"-p {self.port}",
            )
            if result.returncode == 0:
                self.running = True
                return
            failures.append(f"port {self.port}: {result.stdout}{result.stderr}{self._log_tail()}")
            self._kill_postmaster()  # a half-started server must not hold the next attempt
        raise RuntimeError("pg_ctl start failed:\n" + "\n".join(failures))

    def _create_database(self) -> None:
        import psycopg

        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                conninfo = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
                with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f'CREATE DATABASE "{DATABASE}"')
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError, IndexError):
            return None

    def _kill_postmaster(self) -> None:
        pid = self._postmaster_pid()
        if pid is not None and _pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server (fast, else immediate, else SIGKILL) and remove its directory."""
        if os.getpid() != self.owner_pid or self.directory is None:
            return  # a forked child inherited this object: the server is not its to stop
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        if self.data.exists() and self._postmaster_pid() is not None:
            for mode in ("fast", "immediate"):
                try:
                    result = self._run(
                        "pg_ctl",
                        "stop",
                        "--wait",
                        "--pgdata",
                        str(self.data),
                        "--mode",
                        mode,
                        "--timeout=30",
                        timeout=40,
                    )
                except subprocess.TimeoutExpired:
                    continue
                if result.returncode == 0:
                    break
            self._kill_postmaster()
        self.running = False
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None


def _sweep_stale(template: ThrowawayServer) -> None:
    """Remove servers left by test processes that died without teardown (e.g. SIGKILL)."""
    base_dirs = {tempfile.gettempdir(), "/tmp"}
    for base in base_dirs:
        for path in glob.glob(os.path.join(base, DIR_PREFIX + "*")):
            try:
                owner = int(Path(path, OWNER_FILE).read_text().strip())
            except (OSError, ValueError):
                continue  # not ours, or still being made
            if _pid_alive(owner):
                continue
            stale = ThrowawayServer(template.bin_dir)
            stale.directory = Path(path)
            stale.stop()


@contextlib.contextmanager
def throwaway_server() -> Iterator[str]:
    """The URL of a throwaway server running for the ``with`` block.

    Raises :class:`ServerUnavailable` when there are no server binaries to run.
    """
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise ServerUnavailable(
            "no PostgreSQL server binaries (initdb, pg_ctl, postgres) in "
            "/usr/lib/postgresql/*/bin or on PATH"
        )
    server = ThrowawayServer(bin_dir).start()
    try:
        yield server.url
    finally:
        server.stop()
