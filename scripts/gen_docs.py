#!/usr/bin/python3
"""gen_docs - the reference tables of docs/, made from the code, and the
docs' links checked.

    gen_docs.py           rewrite each generated table in place
    gen_docs.py --check   change nothing; exit 1, naming what differs (make lint)

Generated tables sit between `<!-- gen_docs: NAME -->` and `<!-- /gen_docs -->`:

  settings  docs/configuration.md: every setting of pb-ingest and pb-agent,
            from their own table (`--help` of build/pb-ingest and
            build/pb-agent: default, bounds, meaning) and the inventory
            variable that sets it (apps/conf/pb-*.conf.j2, whose defaults
            are the roles' defaults/main.yml: scripts/gen_defaults.py)
  metrics   docs/monitoring.md: every metric family of the daemons
            (apps/common/stdmetrics.c, apps/ingest/ingestmetrics.c,
            apps/agent/agentmetrics.c): name, labels and their values,
            type, which daemons show it, its help text
  keys      docs/design.md: every Redis key and its type, from the key
            table of the key module (apps/common/keys.h)

And checked, not generated: every alert of monitoring/alerts.yml has a
runbook_url whose anchor is a heading of docs/operating.md; every link from
one of README.md and docs/*.md to another (and to an anchor in it)
resolves; the README is at most README_MAX_LINES lines and links every
document of docs/; no document names a file outside the repository.
"""
import glob
import os
import re
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from gen_defaults import TEMPLATES, template_variables  # noqa: E402

README_MAX_LINES = 200
BIN = {"ingest": "build/pb-ingest", "agent": "build/pb-agent"}
METRIC_SOURCES = {"all": "apps/common/stdmetrics.c", "ingest": "apps/ingest/ingestmetrics.c",
                  "agent": "apps/agent/agentmetrics.c"}
RUNBOOK = "docs/operating.md"
BEGIN = re.compile(r"<!-- gen_docs: (\w+) -->\n")
END = "<!-- /gen_docs -->"


def cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


# ---- settings ---------------------------------------------------------------

HELP_LINE = re.compile(r"^  (\w+)\s+(.*?) \[(.*)\](?: \((-?\d+)\.\.(-?\d+)\))?$")


def daemon_settings(program):
    """[(setting, meaning, default, bounds)] in the order --help lists them."""
    out = subprocess.run([os.path.join(ROOT, BIN[program]), "--help"], capture_output=True,
                         text=True, timeout=10)
    rows = []
    for line in (out.stdout + out.stderr).splitlines():
        m = HELP_LINE.match(line)
        if m:
            bounds = "%s–%s" % (m.group(4), m.group(5)) if m.group(4) else ""
            rows.append((m.group(1), m.group(2), m.group(3), bounds))
    if not rows:
        sys.exit("gen_docs: %s --help listed no settings" % BIN[program])
    return rows


def settings_table():
    per = {p: daemon_settings(p) for p in BIN}
    vars_ = {p: template_variables(p) for p in BIN}
    order, rows = [], {}
    for p in BIN:
        for name, meaning, default, bounds in per[p]:
            key = (name, meaning, default, bounds)
            if key in rows:
                rows[key].append(p)
            else:
                rows[key] = [p]
                order.append(key)
    lines = ["| setting | daemon | default | bounds | set from the inventory by | meaning |",
             "|---|---|---|---|---|---|"]
    for key in order:
        name, meaning, default, bounds = key
        daemons = rows[key]
        used = []
        for p in daemons:
            if name not in vars_[p]:
                used.append("— (not in %s)" % os.path.basename(TEMPLATES[p]))
            elif vars_[p][name]:
                used += ["`%s`" % v for v in vars_[p][name]]
            else:
                used.append("fixed by the role")
        used = list(dict.fromkeys(used))
        lines.append("| `%s` | %s | %s | %s | %s | %s |" % (
            name, "both" if len(daemons) == 2 else daemons[0],
            "`%s`" % cell(default) if default else "(empty)", bounds, ", ".join(used),
            cell(meaning)))
    return "\n".join(lines)


# ---- metrics ----------------------------------------------------------------

FAMILY = re.compile(r"(pb_family|pb_counts)\s+\w+\s*=\s*\{(.*?)\n\};", re.S)


def c_strings(text):
    """The concatenated C string literals of text, their escapes undone."""
    raw = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', text))
    return re.sub(r"\\(.)", r"\1", raw)


def field(body, name):
    m = re.search(r"\.%s\s*=\s*(.*?)(?=,\s*\.\w+\s*=|,?\s*$)" % name, body, re.S)
    return m.group(1).strip() if m else None


# Labels whose values a daemon fills at run time: what they are.
RUNTIME_VALUES = {"version": "the version", "shard": "master_name's names"}


def metric_families():
    """[(name, labels, type, from, help)] of every family in the sources."""
    out = []
    for shown, path in METRIC_SOURCES.items():
        with open(os.path.join(ROOT, path)) as f:
            text = f.read()
        for kind, body in FAMILY.findall(text):
            name = c_strings(field(body, "name"))
            help_ = c_strings(field(body, "help"))
            if kind == "pb_counts":
                outcomes = re.findall(r'"(\w+)"', field(body, "outcomes") or "")
                out.append((name, "%s, outcome: %s" % (c_strings(field(body, "label")),
                                                       ", ".join(outcomes)),
                            "counter", shown, help_))
                continue
            type_ = field(body, "type").split(",")[0].replace("PB_", "").lower()
            label = field(body, "label")
            labels = ""
            if label:
                values = re.findall(r'"([^"]*)"', field(body, "values") or "")
                labels = "%s: %s" % (c_strings(label), ", ".join(values) or
                                     RUNTIME_VALUES[c_strings(label)])
            # A hidden family is shown by the one agent holding the lease.
            who = "one agent" if re.search(r"\.hidden\s*=\s*1", body) else shown
            out.append((name, labels, type_, who, help_))
    return out


def metrics_table():
    lines = ["| metric | labels: values | type | shown by | meaning |", "|---|---|---|---|---|"]
    for name, labels, type_, shown, help_ in metric_families():
        lines.append("| `%s` | %s | %s | %s | %s |" % (name, cell(labels), type_, shown,
                                                      cell(help_)))
    return "\n".join(lines)


# ---- keys -------------------------------------------------------------------

KEY_LINE = re.compile(r"^ \*   (<p>:\S+)\s+(\w+); (.*)$")
KEY_MORE = re.compile(r"^ \*\s{20,}(\S.*)$")


def keys():
    """[(key, type, what)] from the table at the head of keys.h."""
    out = []
    with open(os.path.join(ROOT, "apps/common/keys.h")) as f:
        for line in f:
            line = line.rstrip("\n")
            m = KEY_LINE.match(line)
            if m:
                out.append([m.group(1).replace("<p>", "pb"), m.group(2), m.group(3)])
                continue
            m = KEY_MORE.match(line)
            if m and out:
                out[-1][2] += " " + m.group(1)
            elif out and not line.strip(" *"):
                break
    if not out:
        sys.exit("gen_docs: no key table in apps/common/keys.h")
    return out


def keys_table():
    lines = ["| key | type | what |", "|---|---|---|"]
    for k, t, what in keys():
        what = re.sub(r"<p>", "pb", what)
        lines.append("| `%s` | %s | %s |" % (k, t, cell(what)))
    return "\n".join(lines)


TABLES = {"settings": ("docs/configuration.md", settings_table),
          "metrics": ("docs/monitoring.md", metrics_table),
          "keys": ("docs/design.md", keys_table)}


# ---- checks -----------------------------------------------------------------

def slug(heading):
    """GitHub's anchor of a heading."""
    h = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return h.replace(" ", "-")


def anchors(path):
    out, fenced = set(), False
    with open(path) as f:
        for line in f:
            if line.startswith("```"):
                fenced = not fenced
            m = re.match(r"#{1,6} (.*)", line)
            if m and not fenced:
                out.add(slug(m.group(1)))
    return out


def documents():
    return ["README.md"] + sorted(os.path.relpath(p, ROOT) for p in
                                  glob.glob(os.path.join(ROOT, "docs", "**", "*.md"),
                                            recursive=True))


def check_links():
    errors = []
    docs = documents()
    for doc in docs:
        with open(os.path.join(ROOT, doc)) as f:
            text = f.read()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            full = os.path.normpath(os.path.join(ROOT, os.path.dirname(doc), path)) if path \
                else os.path.join(ROOT, doc)
            if not full.startswith(ROOT + os.sep):
                errors.append("%s: link outside the repository: %s" % (doc, target))
            elif not os.path.exists(full):
                errors.append("%s: link to a missing file: %s" % (doc, target))
            elif anchor and full.endswith(".md") and anchor not in anchors(full):
                errors.append("%s: link to a missing heading: %s" % (doc, target))
        if re.search(r"\.\./shared/|SPEC\.md", text):
            errors.append("%s: names a file outside the repository" % doc)
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    n = readme.count("\n")
    if n > README_MAX_LINES:
        errors.append("README.md: %d lines, more than %d" % (n, README_MAX_LINES))
    for doc in docs[1:]:
        if not doc.startswith("docs/history/") and "(%s" % doc not in readme:
            errors.append("README.md: no link to %s" % doc)
    return errors


def check_runbook():
    errors = []
    with open(os.path.join(ROOT, "monitoring/alerts.yml")) as f:
        rules = [r for g in yaml.safe_load(f)["groups"] for r in g["rules"] if "alert" in r]
    have = anchors(os.path.join(ROOT, RUNBOOK))
    for r in rules:
        url = r.get("annotations", {}).get("runbook_url", "")
        anchor = url.partition("#")[2]
        if not url.partition("#")[0].endswith(RUNBOOK.split("/")[-1]) or anchor not in have:
            errors.append("monitoring/alerts.yml: %s: runbook_url %r is not a heading of %s"
                          % (r["alert"], url, RUNBOOK))
    return errors


def main(argv):
    check = argv[1:] == ["--check"]
    if argv[1:] and not check:
        print(__doc__, file=sys.stderr)
        return 2
    errors = []
    for name, (doc, make) in TABLES.items():
        path = os.path.join(ROOT, doc)
        with open(path) as f:
            text = f.read()
        blocks = [m for m in BEGIN.finditer(text) if m.group(1) == name]
        if len(blocks) != 1:
            errors.append("%s: want one <!-- gen_docs: %s --> block, found %d"
                          % (doc, name, len(blocks)))
            continue
        start = blocks[0].end()
        end = text.index(END, start)
        want = make() + "\n"
        if text[start:end] == want:
            continue
        if check:
            errors.append("%s: the %s table differs from the code (make docs rewrites it)"
                          % (doc, name))
        else:
            with open(path, "w") as f:
                f.write(text[:start] + want + text[end:])
            print("gen_docs: rewrote the %s table of %s" % (name, doc))
    errors += check_links() + check_runbook()
    for e in errors:
        print("gen_docs: " + e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
