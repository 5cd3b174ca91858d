#!/usr/bin/python3
"""gen_lua - the Redis scripts, as one library of Redis Functions.

    gen_lua.py OUT.h     write the C header
    gen_lua.py --lint    luacheck (.luacheckrc) on each script as Redis runs it
    gen_lua.py --library print the library (what `pbctl functions load` loads)

Each script lives in apps/lua/NAME.lua; what several need is in
apps/lua/prelude.lua, written once. The library is the prelude followed
by each script as the body of a function, function(KEYS, ARGV), that it
registers as pb_NAME_<version>. The version is a digest of the library's
text: a changed script is a new library, which an operator loads beside
the old one (pbctl functions load) while daemons of both versions run.

A script names its KEYS and ARGV at its top, one local each, in order:

    local ready, heartbeat = KEYS[1], KEYS[2]
    local want = tonumber(ARGV[1])        -- at most this many postbacks

and may read more ARGV past them (a list: `#ARGV`). Its flags for Redis
(allow-oom, no-writes) are a header line, `-- flags: allow-oom (why)`;
without one, Redis's defaults: refused while memory is full or too few
replicas are in sync (enqueue.lua wants exactly that). Its caller, the
Redis user whose permissions it runs with (ingest, agent or operator), is a
header line too, `-- caller: agent (...)`: the tests call it as that user,
and --lint checks that only that program's code calls it.
signature() reads those; OUT.h has, for each script, a struct that
names its arguments and a function that lays them out for FCALL, so that
a C caller sets them by name, never by position. The tests in
tests/scripts call by name the same way.
"""
import hashlib
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIR = os.path.join(ROOT, "apps", "lua")
PRELUDE = "prelude"
FLAGS = {"allow-oom", "no-writes"}
# A caller (a Redis user of sentinel/redis-users.conf.j2) and the code that
# runs as it.
CALLERS = {"ingest": "apps/ingest", "agent": "apps/agent", "operator": "apps/ctl"}


def names():
    """Every script's name (its file without .lua), the prelude aside."""
    return sorted(f[:-4] for f in os.listdir(DIR)
                  if f.endswith(".lua") and f[:-4] != PRELUDE)


def read(name):
    with open(os.path.join(DIR, name + ".lua")) as f:
        return f.read()


def source(name):
    """The script alone as a chunk: the prelude, then the script's file
    (what luacheck reads)."""
    return read(PRELUDE) + read(name)


class Signature:
    """A script's named KEYS and ARGV (with the comment of each ARGV),
    whether it reads more ARGV than it names, and its flags."""

    def __init__(self, name):
        text = read(name)
        self.name = name
        m = re.search(r"^local ([\w, ]+?)\s*=\s*((?:KEYS\[\d+\],?[ \t]*)+)(?:--.*)?$",
                      text, re.M)
        if not m:
            raise SystemExit("apps/lua/%s.lua: no `local ... = KEYS[1], ...` line" % name)
        self.keys = [k.strip() for k in m.group(1).split(",")]
        idx = [int(i) for i in re.findall(r"KEYS\[(\d+)\]", m.group(2))]
        if idx != list(range(1, len(self.keys) + 1)):
            raise SystemExit("apps/lua/%s.lua: KEYS named out of order" % name)
        self.args, self.notes = [], []
        for m in re.finditer(r"^local (\w+) = (?:tonumber\()?ARGV\[(\d+)\]\)?"
                             r"\s*(?:--\s*(.*))?$", text, re.M):
            if int(m.group(2)) != len(self.args) + 1:
                raise SystemExit("apps/lua/%s.lua: ARGV[%s] named out of order"
                                 % (name, m.group(2)))
            self.args.append(m.group(1))
            self.notes.append(m.group(3) or "")
        self.rest = "#ARGV" in text
        m = re.search(r"^-- flags: ([\w -]+)", text, re.M)
        self.flags = m.group(1).split() if m else []
        if set(self.flags) - FLAGS:
            raise SystemExit("apps/lua/%s.lua: unknown flags %s" % (name, self.flags))
        m = re.search(r"^-- caller: (\w+)", text, re.M)
        if not m or m.group(1) not in CALLERS:
            raise SystemExit("apps/lua/%s.lua: no `-- caller: %s` line"
                             % (name, "|".join(CALLERS)))
        self.caller = m.group(1)
        both = self.keys + self.args
        if len(set(both)) != len(both):
            raise SystemExit("apps/lua/%s.lua: a name twice in KEYS and ARGV" % name)


def signature(name):
    return Signature(name)


def version():
    """A digest of every script, the prelude and the flags: the library's
    version, in its name and its functions' names."""
    h = hashlib.sha1()
    for n in [PRELUDE] + names():
        h.update(n.encode() + b"\0" + read(n).encode() + b"\0")
    return h.hexdigest()[:10]


def library_name():
    return "pb_" + version()


def function_name(name):
    return "pb_%s_%s" % (name, version())


def library():
    """The library's text, as FUNCTION LOAD takes it."""
    out = ["#!lua name=%s" % library_name(),
           "-- Generated by scripts/gen_lua.py from apps/lua (prelude.lua, then",
           "-- each script as a function): do not edit.",
           read(PRELUDE)]
    for n in names():
        sig = signature(n)
        flags = ", ".join("'%s'" % f for f in sig.flags)
        out.append("-- apps/lua/%s.lua" % n)
        out.append("redis.register_function{function_name = '%s', flags = {%s},"
                   " callback = function(KEYS, ARGV)" % (function_name(n), flags))
        out.append(read(n).rstrip("\n"))
        out.append("end}\n")
    return "\n".join(out)


def c_string(text):
    """text as C string literals, a line each."""
    out = []
    for line in text.splitlines(keepends=True):
        esc = line.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t")
        out.append('\t"' + esc.replace("\n", "\\n") + '"')
    return " \\\n".join(out)


def c_function(n):
    """The C side of one script: its function's name, a struct naming its
    arguments, and the layout of FCALL's argv from it."""
    sig, up = signature(n), n.upper()
    head = 3 + len(sig.keys) + len(sig.args)
    out = ["/* apps/lua/%s.lua%s */" % (n, ", flags: " + " ".join(sig.flags) if sig.flags else ""),
           '#define PB_FN_%s "%s"' % (up, function_name(n)),
           "typedef struct pb_fn_%s {" % n]
    for i, k in enumerate(sig.keys):
        out.append("\tconst char *%s; /* KEYS[%d] */" % (k, i + 1))
    for i, (a, note) in enumerate(zip(sig.args, sig.notes)):
        out.append("\tconst char *%s; /* ARGV[%d]%s */" % (a, i + 1, ": " + note if note else ""))
    out.append("} pb_fn_%s;" % n)
    rest = (" ARGV[%d..] follow, set by the caller (see the script)." % (len(sig.args) + 1)
            if sig.rest else "")
    out.append("/* FCALL's argv from a: %d words.%s */" % (head, rest))
    out.append("enum { PB_FN_%s_ARGC = %d };" % (up, head))
    out.append("static inline int pb_fn_%s_argv(const pb_fn_%s *a, const char **argv)" % (n, n))
    out.append("{")
    out.append('\targv[0] = "FCALL";')
    out.append("\targv[1] = PB_FN_%s;" % up)
    out.append('\targv[2] = "%d";' % len(sig.keys))
    for i, k in enumerate(sig.keys + sig.args):
        out.append("\targv[%d] = a->%s;" % (i + 3, k))
    out.append("\treturn PB_FN_%s_ARGC;" % up)
    out.append("}\n")
    return out


def header():
    parts = ["/* Generated by scripts/gen_lua.py from apps/lua/: do not edit. */",
             "#ifndef PB_LUA_FUNCTIONS_H", "#define PB_LUA_FUNCTIONS_H", "",
             "/* The library (FUNCTION LOAD): the prelude, then each script as a",
             " * function; its name carries its version, as its functions' do. */",
             '#define PB_FN_LIBRARY_NAME "%s"' % library_name(),
             "#define PB_FN_LIBRARY \\\n%s\n" % c_string(library())]
    for n in names():
        parts += c_function(n)
    parts.append("#endif")
    return "\n".join(parts) + "\n"


def prelude_names():
    """The names the prelude defines (local NAME = / local function NAME)."""
    return re.findall(r"^local (?:function )?(\w+)", read(PRELUDE), re.M)


def lint():
    """luacheck on each script joined to the prelude, as one chunk: the
    body each function runs, with KEYS and ARGV its own. The prelude's
    definitions a script leaves unused are not findings."""
    ignore = ["211/" + n for n in prelude_names()]
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for n in names():
            signature(n)  # its names must parse
            files.append(os.path.join(tmp, n + ".lua"))
            with open(files[-1], "w") as f:
                f.write(source(n))
        rc = subprocess.call(["luacheck", "--no-color", "--codes",
                              "--config", os.path.join(ROOT, ".luacheckrc"),
                              "--ignore", *ignore, "--"] + files)
    return rc or check_callers()


def check_callers():
    """Each function is called from its caller's code only (CALLERS): the
    program whose Redis user the tests call it as."""
    bad = []
    for n in names():
        use = "pb_fn_%s_argv(" % n
        where = set()
        for top, _, files in os.walk(os.path.join(ROOT, "apps")):
            for f in files:
                if f.endswith(".c"):
                    with open(os.path.join(top, f)) as fh:
                        if use in fh.read():
                            where.add(os.path.relpath(top, ROOT))
        want = CALLERS[signature(n).caller]
        if where != {want}:
            bad.append("apps/lua/%s.lua: caller %s (%s), called from %s"
                       % (n, signature(n).caller, want, sorted(where) or "nowhere"))
    for line in bad:
        print("gen_lua: " + line)
    return 1 if bad else 0


def main(argv):
    if argv[1:] == ["--lint"]:
        sys.exit(lint())
    if argv[1:] == ["--library"]:
        sys.stdout.write(library())
        return
    if len(argv) != 2 or argv[1].startswith("-"):
        sys.exit("usage: gen_lua.py OUT.h | --lint | --library")
    tmp = argv[1] + ".tmp"
    with open(tmp, "w") as f:
        f.write(header())
    os.replace(tmp, argv[1])


if __name__ == "__main__":
    main(sys.argv)
