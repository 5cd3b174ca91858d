#!/usr/bin/python3
"""lab - systemd-nspawn machines on a private bridge, from an Ansible inventory.

    lab.py up                 make and boot every machine of the inventory
    lab.py down               stop them; remove overlays, mounts and the bridge
    lab.py status             which machines run
    lab.py stop NAME [--kill] power a machine off (--kill: SIGKILL, a crash)
    lab.py start NAME         boot it again (its disk is kept)
    lab.py ssh NAME [CMD...]  a shell or a command on a machine

Each machine is an overlay over a cached base image (image.sh) with its own
address, hostname, SSH host keys and systemd as PID 1. A supervisor loop per
machine boots it again when it reboots itself (nspawn exits with 133).
State lives in run/lab/; `down` works from what is there, so it also cleans
up after a failed or interrupted `up`.
"""
import os
import shutil
import signal
import subprocess
import sys
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
INVENTORY = os.path.join(ROOT, "ansible", "inventories", "lab", "hosts.yml")
# The second shard, a second inventory source (LAB_SHARDS=1: left out).
SHARD2 = os.path.join(ROOT, "ansible", "inventories", "lab", "shard2.yml")
SHARDS = int(os.environ.get("LAB_SHARDS") or 2)
# Every machine the lab makes: the second shard's too, deployed later.
ALL = [INVENTORY] + ([SHARD2] if SHARDS > 1 else [])
STATE = os.path.join(ROOT, "run", "lab")
MACHINES = os.path.join(STATE, "machines")
KEY = os.path.join(STATE, "ssh", "id_ed25519")
SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "ConnectTimeout=3"]
REBOOT_EXIT = 133   # systemd-nspawn's exit status when the machine rebooted

# The machines' cgroups, one per machine under this, in every hierarchy. With
# no systemd on the build machine, nspawn would otherwise leave every machine
# in the same root cgroup, and their systemds would step on each other's
# units (a restart then fails now and then with 219/CGROUP).
CGROUP_PARENT = "postback-lab"

# Boots a machine and boots it again after a reboot, until told to stop.
SUPERVISOR = r"""
dir=$1; cg=$2; shift 2
for h in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
  if [ -e "$h/cgroup.procs" ]; then
    mkdir -p "$h/$cg" && echo $$ >"$h/$cg/cgroup.procs"
  fi
done
while :; do
  "$@" & echo $! >"$dir/nspawn.pid"
  wait $!; rc=$?
  rm -f "$dir/nspawn.pid"
  echo "lab: $(date -u +%T) machine exited with $rc" >&2
  [ "$rc" -eq 133 ] && [ ! -e "$dir/stop" ] || break
done
"""


def log(msg):
    print("lab: " + msg, file=sys.stderr, flush=True)


def run(*cmd, check=True, capture=False):
    return subprocess.run(cmd, check=check, text=True,
                          stdout=subprocess.PIPE if capture else None)


class Inventory:
    """The lab inventory, from one or more sources (paths): the bridge, its
    gateway address, each machine's address ({name: address}) and each
    group's machines ({group: [names]})."""

    def __init__(self, paths=ALL):
        self.hosts, self.groups = {}, {}
        for path in paths:
            with open(path) as f:
                self.read(yaml.safe_load(f)["all"])
        # A group named in several sources: each host once, in order.
        self.groups = {g: list(dict.fromkeys(m)) for g, m in self.groups.items()}

    def read(self, top):
        def walk(group, name):
            members = self.groups.setdefault(name, [])
            for host, hv in (group.get("hosts") or {}).items():
                if hv:  # a host listed again in another group has no vars there
                    self.hosts[host] = hv["ansible_host"]
                members.append(host)
            for child, cg in (group.get("children") or {}).items():
                members.extend(walk(cg or {}, child))
            return members
        walk(top, "all")
        if "vars" in top:
            self.bridge = top["vars"]["lab_bridge"]
            self.gateway = top["vars"]["lab_gateway"]
            self.tls = bool(top["vars"].get("pb_tls", False))


def mdir(name, *sub):
    return os.path.join(MACHINES, name, *sub)


def read_pid(path):
    try:
        with open(path) as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def is_mounted(path):
    return subprocess.run(["mountpoint", "-q", path]).returncode == 0


# ---- machines -------------------------------------------------------------

def prepare(name, addr, prefix, hosts, image):
    """The machine's overlay, with what makes it this machine."""
    root = mdir(name, "root")
    for d in ("upper", "work", "root"):
        os.makedirs(mdir(name, d), exist_ok=True)
    if not is_mounted(root):
        run("mount", "-t", "overlay", "overlay", "-o",
            f"lowerdir={image},upperdir={mdir(name, 'upper')},workdir={mdir(name, 'work')}",
            root)
    if os.path.exists(os.path.join(root, "etc", "ssh", "ssh_host_ed25519_key")):
        return   # made before (a machine started again keeps its disk)
    write(root, "etc/hostname", name + "\n")
    write(root, "etc/hosts", "127.0.0.1 localhost\n" + "".join(
        f"{a} {n}\n" for n, a in sorted(hosts.items())))
    write(root, "etc/systemd/network/10-host0.network",
          f"[Match]\nName=host0\n\n[Network]\nAddress={addr}/{prefix}\n"
          "LinkLocalAddressing=no\nIPv6AcceptRA=no\n")
    with open(KEY + ".pub") as f:
        write(root, "root/.ssh/authorized_keys", f.read(), mode=0o600)
    os.chmod(os.path.join(root, "root/.ssh"), 0o700)
    subprocess.run(["ssh-keygen", "-q", "-A", "-f", root], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def write(root, rel, text, mode=0o644):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def boot(name, bridge):
    if read_pid(mdir(name, "supervisor.pid")):
        return
    try:
        os.unlink(mdir(name, "stop"))
    except FileNotFoundError:
        pass
    os.makedirs("/run/systemd/nspawn", exist_ok=True)
    console = open(mdir(name, "console.log"), "a")
    p = subprocess.Popen(
        ["bash", "-c", SUPERVISOR, "supervisor", mdir(name), f"{CGROUP_PARENT}/{name}",
         "systemd-nspawn", "-D", mdir(name, "root"), "--register=no", "--keep-unit",
         "-b", f"--network-bridge={bridge}", f"--machine={name}",
         "--console=read-only", "--quiet"],
        stdin=subprocess.DEVNULL, stdout=console, stderr=console,
        start_new_session=True)
    with open(mdir(name, "supervisor.pid"), "w") as f:
        f.write(str(p.pid))


def children(pid):
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        kids.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return kids


def kill_machine(name):
    """A crash: SIGKILL to the machine's init, which takes every process of
    its PID namespace with it. (SIGKILL to nspawn alone would leave the
    machine running, orphaned.)"""
    pid = read_pid(mdir(name, "nspawn.pid"))
    for leader in children(pid) if pid else []:
        try:
            os.kill(leader, signal.SIGKILL)
        except ProcessLookupError:
            pass


def stop(name, kill=False, timeout=30):
    """Power the machine off (SIGTERM to nspawn: a clean shutdown) or crash it."""
    open(mdir(name, "stop"), "w").close()
    pid = read_pid(mdir(name, "nspawn.pid"))
    if pid:
        if kill:
            kill_machine(name)
        else:
            os.kill(pid, signal.SIGTERM)
        deadline = time.time() + timeout
        while read_pid(mdir(name, "nspawn.pid")) and time.time() < deadline:
            time.sleep(0.2)
        if read_pid(mdir(name, "nspawn.pid")):
            log(f"{name}: no clean shutdown in {timeout}s; killing it")
            kill_machine(name)
            os.kill(pid, signal.SIGKILL)
    sup = read_pid(mdir(name, "supervisor.pid"))
    deadline = time.time() + 10
    while sup and read_pid(mdir(name, "supervisor.pid")) and time.time() < deadline:
        time.sleep(0.1)
    if read_pid(mdir(name, "supervisor.pid")):
        os.kill(sup, signal.SIGKILL)
    try:
        os.unlink(mdir(name, "supervisor.pid"))
    except FileNotFoundError:
        pass


def ssh(addr, *cmd, check=True, capture=True, timeout=120, input=None):
    p = subprocess.run(["ssh", "-i", KEY] + SSH_OPTS + ["root@" + addr] + list(cmd),
                       text=True, capture_output=capture, timeout=timeout, input=input)
    if check and p.returncode != 0:
        raise RuntimeError(f"ssh {addr} {' '.join(cmd)}: exit {p.returncode}: "
                           f"{(p.stderr or '').strip()}")
    return p


def wait_ssh(addrs, timeout=120):
    deadline = time.time() + timeout
    pending = dict(addrs)
    while pending and time.time() < deadline:
        for name, addr in list(pending.items()):
            try:
                p = ssh(addr, "systemctl", "is-system-running", "--wait",
                        check=False, timeout=60)
            except subprocess.TimeoutExpired:
                continue
            if p.returncode == 0 or p.stdout.strip() in ("running", "degraded"):
                del pending[name]
        time.sleep(0.5)
    if pending:
        raise RuntimeError("no SSH in %ds on: %s" % (timeout, ", ".join(sorted(pending))))


# ---- the lab --------------------------------------------------------------

def up(inv):
    if os.geteuid() != 0:
        sys.exit("lab: needs root (bridge, mounts, systemd-nspawn)")
    bridge, gateway, hosts = inv.bridge, inv.gateway, inv.hosts
    image = run(os.path.join(HERE, "image.sh"), capture=True).stdout.strip()
    os.makedirs(os.path.dirname(KEY), exist_ok=True)
    if not os.path.exists(KEY):
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "postback-lab", "-f", KEY)
    if subprocess.run(["ip", "link", "show", bridge], capture_output=True).returncode:
        run("ip", "link", "add", bridge, "type", "bridge")
        run("ip", "addr", "add", gateway, "dev", bridge)
    run("ip", "link", "set", bridge, "up")
    prefix = gateway.split("/")[1]
    for name, addr in hosts.items():
        prepare(name, addr, prefix, hosts, image)
        boot(name, bridge)
    log(f"booting {len(hosts)} machines on {bridge}; waiting for SSH")
    wait_ssh(hosts)
    log("all machines up: " + ", ".join(f"{n}={a}" for n, a in hosts.items()))


def down(inv):
    bridge = inv.bridge
    names = sorted(os.listdir(MACHINES)) if os.path.isdir(MACHINES) else []
    for name in names:
        stop(name)
    for name in names:
        root = mdir(name, "root")
        for _ in range(10):
            if not is_mounted(root):
                break
            if subprocess.run(["umount", root]).returncode:
                time.sleep(0.5)
        if is_mounted(root):
            run("umount", "-l", root)
    shutil.rmtree(MACHINES, ignore_errors=True)
    remove_cgroups()
    if subprocess.run(["ip", "link", "show", bridge], capture_output=True).returncode == 0:
        run("ip", "link", "del", bridge)
    log(f"down: {len(names)} machines, their mounts and {bridge} removed")


def remove_cgroups():
    """The machines' cgroups, deepest first (only empty ones can go)."""
    for h in ("/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        top = os.path.join(h, CGROUP_PARENT)
        if not os.path.isdir(top):
            continue
        for d, _, _ in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
            try:
                os.rmdir(d)
            except OSError:
                pass


def status(inv):
    for name, addr in inv.hosts.items():
        pid = read_pid(mdir(name, "nspawn.pid"))
        print(f"{name:10} {addr:15} {'running (nspawn %d)' % pid if pid else 'stopped'}")


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    cmd, args = argv[0], argv[1:]
    inv = Inventory()
    if cmd == "up":
        up(inv)
    elif cmd == "down":
        down(inv)
    elif cmd == "status":
        status(inv)
    elif cmd == "stop" and args:
        stop(args[0], kill="--kill" in args)
    elif cmd == "start" and args:
        boot(args[0], inv.bridge)
        wait_ssh({args[0]: inv.hosts[args[0]]})
    elif cmd == "ssh" and args:
        return subprocess.call(["ssh", "-i", KEY] + SSH_OPTS[:-2] +
                               ["root@" + inv.hosts[args[0]]] + args[1:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
