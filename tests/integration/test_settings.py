"""One place for each setting's default: the Ansible roles'
defaults/main.yml. The daemons' built-in defaults (their --help; generated
from the roles by scripts/gen_defaults.py) agree with it, the rendered
configs of the local cluster carry it, and no topology repeats it: changing
a default is one line in a role's defaults."""
import os
import re
import subprocess

import jinja2
import yaml

import gen_defaults
from conftest import ROOT
from gen_defaults import ASSIGN, TEMPLATES
from pbcluster import load_topology, role_defaults

SETTING = re.compile(r"^  (\w+)\s.*\[(.*)\](?: \(-?\d+\.\.-?\d+\))?$")


def builtin_defaults(program):
    """{setting: default} from pb-<program> --help."""
    out = subprocess.run([os.path.join(ROOT, "build", "pb-" + program), "--help"],
                         capture_output=True, text=True).stdout
    return {m.group(1): m.group(2) for m in map(SETTING.match, out.splitlines()) if m}


def role_settings(program):
    """{setting: the role variable its template line takes it from}."""
    return gen_defaults.settings([program])


def rendered(program, vars_):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROOT),
                             undefined=jinja2.ChainableUndefined)
    text = env.get_template(TEMPLATES[program]).render(**vars_)
    return {m.group(1): m.group(2).strip('"') for m in map(ASSIGN.match, text.splitlines())
            if m}


def same(a, b):
    flag = {"yes": "1", "true": "1", "no": "0", "false": "0"}
    return flag.get(str(a).lower(), str(a)) == flag.get(str(b).lower(), str(b))


def test_daemon_defaults_are_the_roles_defaults():
    for program in TEMPLATES:
        builtin = builtin_defaults(program)
        from_roles = rendered(program, role_defaults())
        settings = role_settings(program)
        assert settings, program
        for setting, var in settings.items():
            assert setting in builtin, (program, setting)
            if setting in gen_defaults.DELIBERATE:
                # Left out of the rendered file (the built-in one holds), or
                # a value of its own.
                assert not same(from_roles.get(setting, ""), builtin[setting]), \
                    "%s %s: no longer differs; drop it from DELIBERATE" % (program, setting)
                continue
            assert same(from_roles[setting], builtin[setting]), \
                "%s: %s is %r in the roles (%s) but %r built in" % (
                    program, setting, from_roles[setting], var, builtin[setting])


def test_local_configs_carry_the_roles_defaults_but_for_their_own_vars():
    topo = load_topology(os.path.join(ROOT, "cluster", "local.yml"))
    with open(os.path.join(ROOT, "cluster", "local.yml")) as f:
        own = set(yaml.safe_load(f)["vars"])
    roles = role_defaults()
    for program in TEMPLATES:
        local = rendered(program, topo["vars"])
        for setting, var in role_settings(program).items():
            want = topo["vars"][var] if var in own else roles[var]
            # An empty optional setting is left out of the file.
            assert same(local.get(setting, ""), want), (program, setting, local.get(setting),
                                                       want)


def test_no_topology_repeats_what_it_inherits():
    """A topology's vars differ from what it stands on: the roles' defaults,
    or the topology its 'base' names."""
    here = os.path.join(ROOT, "cluster")
    for name in os.listdir(here):
        with open(os.path.join(here, name)) as f:
            topo = yaml.safe_load(f)
        under = (load_topology(os.path.join(here, topo["base"]))["vars"] if "base" in topo
                 else role_defaults())
        repeated = {k: v for k, v in (topo.get("vars") or {}).items()
                    if k in under and under[k] == v}
        assert not repeated, "%s repeats what it inherits: %s" % (name, repeated)
