#!/usr/bin/python3
"""render_units - the systemd units the Debian package ships.

    render_units.py OUTDIR

Renders apps/conf/pb-ingest.service.j2 and pb-agent.service.j2, the
templates the Ansible roles render per host, with the roles' defaults into
OUTDIR/postback.pb-ingest.service and OUTDIR/postback.pb-agent.service
(where dh_installsystemd finds them). A deployment's own values (the
roles write /etc/systemd/system/pb-*.service) take precedence over these.
"""
import os
import sys

import jinja2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

from pbcluster import role_defaults  # noqa: E402

UNITS = ("pb-ingest", "pb-agent")
MANAGED = ("Shipped by the postback package with the Ansible roles' defaults; "
           "the roles write /etc/systemd/system/{unit}.service, which wins")


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(ROOT, "apps", "conf")),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    for unit in UNITS:
        text = env.get_template(unit + ".service.j2").render(
            role_defaults(), ansible_managed=MANAGED.format(unit=unit))
        with open(os.path.join(argv[1], "postback.%s.service" % unit), "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
