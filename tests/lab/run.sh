#!/usr/bin/env bash
# make lab: the Ansible roles proven on real machines.
#   1. lint: ansible-lint, a syntax check of site.yml and
#      rotate-passwords.yml and the variables' check with every inventory, a
#      wrongly typed variable refused before any host, vagrant validate;
#   2. the Debian packages (make deb: debhelper, lintian);
#   3. systemd-nspawn machines from the lab inventory (lab.py up);
#   4. site.yml over SSH, then tests/lab: a second run changes nothing, the
#      sample end to end, the firewall, reboots, the master's host lost,
#      an upgrade and a password rotation with postbacks flowing.
# The machines, mounts and bridge are removed at the end, also on failure;
# LAB_KEEP=1 leaves them up to look around (then: make lab-down).
# LAB_SECOND_RUNS=once (CI): the idempotence check once, after the first
# run; not again after the rotation and the upgrade, and no --check run.
# LAB_SHARDS=1 (CI): no second shard (inventories/lab/shard2.yml); by
# default the lab deploys one shard, then adds the second with postbacks
# flowing (tests/lab/test_lab.py), and the tests after it run on two.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p run/lab
# Every playbook run ends its log with its slowest tasks and each play's
# time (tests/lab/callbacks/task_times.py); all runs' tasks, as JSON lines,
# in run/lab/task-times.jsonl.
export ANSIBLE_CALLBACK_PLUGINS="$PWD/tests/lab/callbacks" ANSIBLE_CALLBACKS_ENABLED=task_times
export TASK_TIMES_FILE="$PWD/run/lab/task-times.jsonl"
rm -f "$TASK_TIMES_FILE"
# The machines' facts gathered once, kept for every later run of this lab
# (gathering = smart reads them from the cache): 11 hosts' facts are about
# 10 s of every playbook run otherwise. Made anew with the machines.
export ANSIBLE_CACHE_PLUGIN=jsonfile ANSIBLE_CACHE_PLUGIN_CONNECTION="$PWD/run/lab/facts"
export ANSIBLE_CACHE_PLUGIN_TIMEOUT=86400
rm -rf run/lab/facts
step() { echo "== lab: $* ($(date -u +%T))"; }
cleanup() {
  rc=$?
  if [ "${LAB_KEEP:-0}" = 1 ]; then
    echo "lab: LAB_KEEP=1, machines left up (tests/lab/lab.py status; make lab-down)"
  else
    tests/lab/lab.py down || rc=1
  fi
  exit $rc
}
trap cleanup EXIT

step "lint"
(cd ansible && ansible-lint)
for inv in ansible/inventories/*/hosts.yml; do
  for book in site.yml rotate-passwords.yml; do
    (cd ansible && ansible-playbook --syntax-check -i "../$inv" "$book" >/dev/null)
  done
  (cd ansible && ansible-playbook -i "../$inv" check-inventory.yml >/dev/null)
  echo "syntax and variables ok with $inv"
done
(cd ansible && ansible-playbook -i inventories/lab/hosts.yml -i inventories/lab/shard2.yml \
  check-inventory.yml >/dev/null)
echo "variables ok with the lab's two shards"
lab_sources="-i inventories/lab/hosts.yml"
if [ "${LAB_SHARDS:-2}" != 1 ]; then
  lab_sources="$lab_sources -i inventories/lab/shard2.yml"
fi
# A wrongly typed variable stops site.yml before any host is touched (the
# machines are not even up yet): the check names it, and no play after it
# starts.
if (cd ansible && ansible-playbook -i inventories/lab/hosts.yml -e pb_agent_concurrency=lots \
      site.yml) >run/lab/ansible-bad-variable.log 2>&1; then
  echo "lab: site.yml ran with pb_agent_concurrency=lots"; exit 1
fi
grep -q "argument 'pb_agent_concurrency' is of type" run/lab/ansible-bad-variable.log
! grep -q "^PLAY \[Base system" run/lab/ansible-bad-variable.log
echo "a wrongly typed variable is refused before any host is touched"
(cd vagrant && vagrant validate --ignore-provider >/dev/null &&
  VAGRANT_DEFAULT_PROVIDER=libvirt vagrant validate)

step "package"
# CI's deb stage has just built this commit's package: a clean tree of the
# same version makes the same one.
deb="build/deb/postback_$(scripts/version.sh)_amd64.deb"
if [ -f "$deb" ] && [ -z "$(git status --porcelain 2>/dev/null)" ]; then
  echo "lab: $deb is this clean tree's package already"
else
  scripts/mkdeb.sh
fi

step "TLS certificate for the lab's HAProxy (run/lab/tls)"
lb=$(/usr/bin/python3 -c 'import yaml; i = yaml.safe_load(open("ansible/inventories/lab/hosts.yml"))
print(i["all"]["children"]["lb"]["hosts"]["lb1"]["ansible_host"])')
mkdir -p run/lab/tls
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=postback lab" \
  -addext "subjectAltName=IP:$lb" -keyout run/lab/tls/key.pem -out run/lab/tls/cert.pem 2>/dev/null
cat run/lab/tls/cert.pem run/lab/tls/key.pem > run/lab/tls/haproxy.pem
chmod 600 run/lab/tls/key.pem run/lab/tls/haproxy.pem

step "machines"
tests/lab/lab.py down 2>/dev/null || true    # leftovers of an interrupted run
tests/lab/lab.py up

step "site.yml, first run (log: run/lab/ansible-first-run.log)"
if ! (cd ansible && ansible-playbook -i inventories/lab/hosts.yml -e pb_bootstrap=true site.yml) \
    >run/lab/ansible-first-run.log 2>&1; then
  tail -60 run/lab/ansible-first-run.log
  exit 1
fi
sed -n '/PLAY RECAP/,$p' run/lab/ansible-first-run.log

step "tests"
/usr/bin/python3 -m pytest -q -s -p no:cacheprovider --durations=15 tests/lab

if [ "${LAB_SECOND_RUNS:-}" = once ]; then
  step "passed (LAB_SECOND_RUNS=once: no second runs after the drills, no --check run)"
  exit 0
fi
step "site.yml --check --diff on the provisioned lab (log: run/lab/ansible-check.log)"
# shellcheck disable=SC2086 # two options, split on purpose
if ! (cd ansible && ansible-playbook $lab_sources --check --diff site.yml) \
    >run/lab/ansible-check.log 2>&1; then
  tail -60 run/lab/ansible-check.log
  exit 1
fi
sed -n '/PLAY RECAP/,$p' run/lab/ansible-check.log
step "passed"
