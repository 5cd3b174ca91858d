"""Password rotation on real servers, as rotate-passwords.yml does it: the
users files rendered from the roles' templates (sentinel/redis-users.conf.j2,
sentinel/sentinel-users.conf.j2) and applied live by pb-redis-users, on a
master, its replica and a Sentinel started here from Debian's packages.

While both passwords are valid every user accepts each, connections made
with the old one stay up, and replication and Sentinel keep working; after
the old ones are retired every server refuses them, also after a restart
(Redis reads the users file it includes; Sentinel recorded what it was told
in its own file)."""
import hashlib
import os
import secrets
import socket
import subprocess
import sys
import time

import jinja2
import pytest
import redis

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from pbcluster import ansible_filters, free_port, role_defaults  # noqa: E402

APPLY = os.path.join(ROOT, "ansible", "roles", "common", "files", "pb-redis-users")
REDIS_USERS = ["admin", "operator", "replication", "sentinel", "ingest", "agent", "monitor"]
SENTINEL_USERS = {"peer": "sentinel_peer", "client": "sentinel_client",
                  "operator": "sentinel_operator", "monitor": "monitor"}
NAMES = REDIS_USERS + ["sentinel_peer", "sentinel_client", "sentinel_operator"]


def new_passwords():
    return {n: secrets.token_hex(16) for n in NAMES}


class Servers:
    """A master, a replica and a Sentinel in one folder, each with its users
    file rendered from the roles' templates."""

    def __init__(self, d, passwords, tls_dir=""):
        self.d = d
        self.tls = tls_dir
        self.ports = {"master": free_port(), "replica": free_port(), "sentinel": free_port()}
        self.procs = {}
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([ROOT, os.path.join(ROOT, "sentinel")]),
            # As Ansible renders: an included file's last newline is dropped.
            undefined=jinja2.StrictUndefined, keep_trailing_newline=False, trim_blocks=True)
        ansible_filters(self.env)
        self.vars = dict(role_defaults(), redis_passwords=passwords)
        self.name = self.vars["pb_master_name"]
        for node in ("master", "replica"):
            os.makedirs(self.path(node), exist_ok=True)
            self.render("redis-users.conf.j2", self.users_file(node))
            self.render("sentinel/redis.conf.j2", self.path(node + ".conf"), dict(
                redis_bind="127.0.0.1", redis_port=self.ports[node], redis_dir=self.path(node),
                redis_logfile=self.path(node + ".log"), redis_users_file=self.users_file(node),
                redis_tls_dir=tls_dir,
                redis_replicaof="" if node == "master" else "127.0.0.1 %d" % self.ports["master"]))
        os.makedirs(self.path("sentinel"), exist_ok=True)
        self.render("sentinel-users.conf.j2", self.users_file("sentinel"))
        self.render("sentinel/sentinel.conf.j2", self.path("sentinel.conf"), dict(
            sentinel_bind="127.0.0.1", sentinel_port=self.ports["sentinel"],
            sentinel_dir=self.path("sentinel"), sentinel_logfile=self.path("sentinel.log"),
            sentinel_master_host="127.0.0.1", sentinel_master_port=self.ports["master"],
            sentinel_tls_dir=tls_dir, pb_sentinel_quorum=1))
        for node in ("master", "replica", "sentinel"):
            self.start(node)

    def path(self, *p):
        return os.path.join(self.d, *p)

    def users_file(self, node):
        return self.path(node + "-users.conf")

    def render(self, template, out, extra=None):
        text = self.env.get_template(template).render(**dict(self.vars, **(extra or {})))
        with open(out, "w") as f:
            f.write(text)

    def rerender_users(self, passwords, previous):
        self.vars.update(redis_passwords=passwords, redis_passwords_previous=previous)
        for node in ("master", "replica"):
            self.render("redis-users.conf.j2", self.users_file(node))
        self.render("sentinel-users.conf.j2", self.users_file("sentinel"))

    def start(self, node):
        argv = ["redis-server", self.path(node + ".conf")]
        if node == "sentinel":
            argv.append("--sentinel")
        self.procs[node] = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.ports[node]), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("%s did not start (see %s.log)" % (node, node))

    def stop(self, node):
        """SIGTERM until it exits: Redis refuses one while it writes its
        first AOF after a sync."""
        p = self.procs.pop(node, None)
        deadline = time.time() + 20
        while p and p.poll() is None:
            if time.time() > deadline:
                p.kill()
            p.send_signal(15)
            try:
                p.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass

    def stop_all(self):
        for node in ("sentinel", "replica", "master"):
            self.stop(node)

    def apply(self, node, phase, current, previous=None):
        """pb-redis-users, as the roles' handlers run it."""
        user, secret = ("operator", "sentinel_operator") if node == "sentinel" else ("admin", "admin")
        stdin = "%s\n%s\n" % (current[secret], (previous or {}).get(secret, ""))
        tls = ["--tls-ca", os.path.join(self.tls, "ca.pem")] if self.tls else []
        out = subprocess.run([APPLY, "--port", str(self.ports[node]), "--user", user,
                              "--phase", phase, *tls, self.users_file(node)],
                             input=stdin, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert current[secret] not in out.stdout + out.stderr
        return out.stdout

    def apply_all(self, current, previous=None):
        """Users on every server before credentials on any, Redis first."""
        for phase in ("users", "credentials"):
            for node in ("master", "replica"):
                self.apply(node, phase, current, previous)
        for phase in ("users", "credentials"):
            self.apply("sentinel", phase, current, previous)

    def client(self, node, user, password):
        tls = dict(ssl=True, ssl_ca_certs=os.path.join(self.tls, "ca.pem")) if self.tls else {}
        return redis.Redis(port=self.ports[node], username=user, password=password,
                           socket_timeout=5, **tls)

    def accepts(self, node, user, password):
        try:
            return self.client(node, user, password).ping()
        except (redis.AuthenticationError, redis.ResponseError) as e:
            if isinstance(e, redis.AuthenticationError) or str(e).startswith("WRONGPASS"):
                return False
            raise

    def replica_linked(self, pw, timeout=15):
        r = self.client("replica", "admin", pw["admin"])
        deadline = time.time() + timeout
        while time.time() < deadline:
            if r.info("replication").get("master_link_status") == "up":
                return True
            time.sleep(0.1)
        return False

    def sentinel_sees_master(self, pw):
        s = self.client("sentinel", "operator", pw["sentinel_operator"])
        m = s.sentinel_master(self.name)  # redis-py parses the flags
        return m["is_master"] and not m["is_sdown"] and m["num-slaves"] == 1


@pytest.fixture
def servers(tmp_path):
    s = Servers(str(tmp_path), new_passwords())
    yield s
    s.stop_all()


def every_user(servers, pw, expect):
    """Each Redis user on both servers and each Sentinel user: accepted or
    refused as expected; the names that were not."""
    wrong = []
    for node in ("master", "replica"):
        for user in REDIS_USERS:
            if servers.accepts(node, user, pw[user]) != expect:
                wrong.append("%s@%s" % (user, node))
    for user, secret in SENTINEL_USERS.items():
        if servers.accepts("sentinel", user, pw[secret]) != expect:
            wrong.append("%s@sentinel" % user)
    return wrong


def test_rotation_keeps_every_user_and_link_working_and_retires_the_old_passwords(servers):
    old = servers.vars["redis_passwords"]
    assert servers.replica_linked(old)
    assert every_user(servers, old, True) == []
    # A daemon's connection, made with the old password.
    ingest_conn = servers.client("master", "ingest", old["ingest"])
    assert ingest_conn.ping()

    # Both valid: the new passwords everywhere, the old ones kept.
    new = new_passwords()
    servers.rerender_users(new, old)
    servers.apply_all(new, old)
    assert every_user(servers, old, True) == []
    assert every_user(servers, new, True) == []
    assert ingest_conn.ping()
    # The replica and the Sentinel now send the new ones: a new link works.
    servers.client("replica", "admin", new["admin"]).execute_command("CLIENT", "KILL", "TYPE", "master")
    assert servers.replica_linked(new)
    assert servers.sentinel_sees_master(new)

    # Retired: only the new ones.
    servers.rerender_users(new, {})
    out = servers.apply("master", "users", new)
    assert "user ingest" in out
    servers.apply_all(new)
    assert every_user(servers, old, False) == []
    assert every_user(servers, new, True) == []
    servers.client("replica", "admin", new["admin"]).execute_command("CLIENT", "KILL", "TYPE", "master")
    assert servers.replica_linked(new)

    # The same after restarts: Redis reads its users file, the Sentinel its
    # own file, where it recorded the new users and passwords.
    for node in ("replica", "sentinel"):
        servers.stop(node)
    with open(servers.path("sentinel.conf")) as f:
        recorded = f.read()
    assert old["sentinel"] not in recorded and old["sentinel_peer"] not in recorded
    assert hashlib.sha256(old["sentinel_client"].encode()).hexdigest() not in recorded
    for node in ("replica", "sentinel"):
        servers.start(node)
    assert servers.replica_linked(new)
    assert every_user(servers, old, False) == []
    assert every_user(servers, new, True) == []
    deadline = time.time() + 15
    while not servers.sentinel_sees_master(new):
        assert time.time() < deadline, "the restarted Sentinel does not see the master and replica"
        time.sleep(0.2)


def test_apply_refuses_a_line_it_does_not_know_and_changes_nothing(servers):
    pw = servers.vars["redis_passwords"]
    with open(servers.users_file("master"), "a") as f:
        f.write("\nappendonly no\n")
    out = subprocess.run([APPLY, "--port", str(servers.ports["master"]), "--phase", "users",
                          servers.users_file("master")], input=pw["admin"] + "\n",
                         capture_output=True, text=True)
    assert out.returncode != 0 and "not a users file line: appendonly" in out.stderr
    assert servers.client("master", "admin", pw["admin"]).config_get("appendonly")["appendonly"] == "yes"


def test_apply_with_no_valid_password_names_the_user_and_fails(servers):
    out = subprocess.run([APPLY, "--port", str(servers.ports["master"]), "--wait", "1",
                          "--phase", "users", servers.users_file("master")],
                         input="wrong\nalso-wrong\n", capture_output=True, text=True)
    assert out.returncode == 1
    assert "AUTH as admin refused" in out.stderr and "wrong" not in out.stderr.replace("WRONGPASS", "")


def make_tls(d):
    """An authority and a certificate for 127.0.0.1 signed by it, as the tls
    role makes them (roles/tls/tasks/main.yml)."""
    os.makedirs(d)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"]
    run = lambda *a: subprocess.run(["openssl", "req", "-x509", *ec, *a], check=True,
                                    capture_output=True)
    run("-subj", "/CN=test authority", "-keyout", d + "/ca.key", "-out", d + "/ca.pem")
    run("-subj", "/CN=server", "-addext", "subjectAltName=IP:127.0.0.1",
        "-addext", "basicConstraints=critical,CA:FALSE", "-CA", d + "/ca.pem",
        "-CAkey", d + "/ca.key", "-keyout", d + "/server.key", "-out", d + "/server.pem")
    return d


def test_with_tls_only_replication_sentinel_and_the_users_files_work_and_clear_text_is_refused(
        tmp_path):
    """pb_tls's servers (redis.conf.j2 and sentinel.conf.j2 with a TLS
    folder): the replica syncs and the Sentinel watches both over TLS, a
    clear-text client gets nothing, and pb-redis-users applies users files
    over TLS, verifying the server (a rotation's first step here)."""
    tls = make_tls(str(tmp_path / "tls"))
    s = Servers(str(tmp_path / "servers"), new_passwords(), tls_dir=tls)
    try:
        old = s.vars["redis_passwords"]
        assert s.replica_linked(old)
        deadline = time.time() + 15
        while not s.sentinel_sees_master(old):
            assert time.time() < deadline, "the Sentinel does not see master and replica over TLS"
            time.sleep(0.2)
        for node in ("master", "sentinel"):
            clear = redis.Redis(port=s.ports[node], socket_timeout=3)
            with pytest.raises(redis.ConnectionError):
                clear.ping()
        new = new_passwords()
        s.rerender_users(new, old)
        s.apply_all(new, old)
        assert every_user(s, new, True) == [] and every_user(s, old, True) == []
        # A server whose certificate the authority did not sign is refused.
        other = make_tls(str(tmp_path / "other"))
        out = subprocess.run([APPLY, "--port", str(s.ports["master"]), "--wait", "1",
                              "--tls-ca", other + "/ca.pem", "--phase", "users",
                              s.users_file("master")], input=new["admin"] + "\n",
                             capture_output=True, text=True)
        assert out.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in out.stderr, out.stderr
    finally:
        s.stop_all()

