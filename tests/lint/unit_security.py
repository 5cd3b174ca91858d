#!/usr/bin/python3
"""unit_security - `systemd-analyze security` of the units the roles ship,
rendered with the roles' defaults: pb-ingest.service, pb-agent.service,
pb-stunnel.service (pb_tls), and
Debian's haproxy.service with the drop-in of the haproxy role. Fails when
one's exposure is above MAX (#17: at most 2.0 each)."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import jinja2

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from pbcluster import role_defaults  # noqa: E402

MAX = 2.0
UNITS = {  # unit: (template, where it goes; None: the unit itself)
    "pb-ingest.service": ("apps/conf/pb-ingest.service.j2", None),
    "pb-agent.service": ("apps/conf/pb-agent.service.j2", None),
    "pb-stunnel.service": ("ansible/roles/tls/templates/pb-stunnel.service.j2", None),
    "haproxy.service": ("haproxy/haproxy.service.override.j2",
                        "etc/systemd/system/haproxy.service.d/postback.conf"),
}


def main():
    v = dict(role_defaults(), ansible_managed="rendered by tests/lint/unit_security.py")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(
        [ROOT, os.path.join(ROOT, "apps", "conf")]),
        undefined=jinja2.StrictUndefined, trim_blocks=True)
    worst, failed = [], False
    with tempfile.TemporaryDirectory() as root:
        units = os.path.join(root, "etc", "systemd", "system")
        os.makedirs(units)
        shutil.copy("/lib/systemd/system/haproxy.service", units)
        for unit, (tmpl, dest) in UNITS.items():
            path = os.path.join(root, dest) if dest else os.path.join(units, unit)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(env.get_template(tmpl).render(**v))
        for unit in UNITS:
            p = subprocess.run(["systemd-analyze", "security", "--offline=true",
                                "--root=" + root, unit], capture_output=True, text=True)
            m = re.search(r"Overall exposure level for \S+: ([\d.]+)", p.stdout)
            if not m:
                print("unit-security: %s: %s" % (unit, p.stderr or p.stdout))
                failed = True
                continue
            level = float(m.group(1))
            worst.append("%s %.1f" % (unit, level))
            if level > MAX:
                failed = True
                print("unit-security: %s exposure %.1f is above %.1f:\n%s"
                      % (unit, level, MAX, p.stdout))
    print("unit-security: " + ", ".join(worst) + " (at most %.1f)" % MAX)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
