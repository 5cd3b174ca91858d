# Postback delivery: build, test, run.
#
#   make            build the daemons into build/
#   make test       install what is missing, build, run every single-machine test
#   make scripts-test  the Redis scripts (apps/lua) alone against a real Redis
#   make tools-test  the benchmarks' own judgement (tests/bench/test_*.py), on made-up rounds
#   make rules      promtool: check and unit-test the alert rules
#   make fuzz       each libFuzzer target for FUZZ_SECONDS (60)
#   make integration-asan  the integration tests against ASan/UBSan daemons
#   make run        install what is missing, build, start the local cluster
#   make stop       stop the local cluster
#   make deb        the Debian packages (debhelper) the Ansible roles install
#   make drill      every failover drill on network-namespace hosts (root)
#   make drill-soak SOAK_N partitions in turn, a backlog across each (root, ~40 s each)
#   make drill-shards  the drills with two shards: a shard master killed under load, one cut off (root)
#   make fairness   a small client beside a large client's backlog of 100,000 for one partner (~3 min)
#   make outage     a partner down for 10 minutes with the default settings: no dead letter (~20 min)
#   make lab        the Ansible roles on systemd-nspawn machines (root, ~35 min)
#   make lab-down   remove the lab's machines, mounts and bridge
#   make bench      throughput and bytes against measured ceilings (~3 min)
#   make bench-ratios  issue 14's two ratios alone, in rounds (~2 min)
#   make bench-links  bytes a postback on the Redis links and in the AOF (~1 min)
#   make bench-parts  CPU time per part and the cost targets: ingest of 1 and of 100 objects,
#                     delivery, no work (~2 min; BENCH_SIGN=1 signs); BENCH_AGAINST=<commit>
#                     the same alternated with that commit's; BENCH_SHARDS=1,2 each master's
#                     cost with one shard and two; BENCH_FORCE_AOF_REWRITE=1 shows a round invalid
#   make bench-metrics  the same runs with metrics on and off (~6 min)
#   make lint       clang-tidy (.clang-tidy) and cppcheck on every C file,
#                   luacheck on the Redis scripts, pyflakes on the Python
#   make install    install binaries (PREFIX, DESTDIR)
#   make clean

PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR  := $(PREFIX)/bin

CC      ?= cc
CSTD    := -std=c11 -D_GNU_SOURCE
# -Wno-format-truncation: snprintf cutting a message at its buffer is the
# bounded behaviour we want, not a bug.
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wformat=2 \
           -Wno-format-truncation
OPT     ?= -O2 -g
CFLAGS  ?=
LDFLAGS ?=
# Hardening, as Debian's dpkg-buildflags gives it (hardening=+all): a
# canary on stack buffers, checked libc calls where the size is known,
# position-independent executables, relocations read-only after start.
# tests/lint/hardening.sh checks the binaries for each.
HARDEN   := -fstack-protector-strong -fstack-clash-protection -D_FORTIFY_SOURCE=2 -fPIE
LDHARDEN := -pie -Wl,-z,relro -Wl,-z,now
LIBS_INGEST := -lfcgi -lcurl -lhiredis -ljansson -lmicrohttpd -lcrypto -lsystemd -lm -lpthread
LIBS_AGENT  := -lcurl -lhiredis -ljansson -lmicrohttpd -lcrypto -lsystemd -lm -lpthread
LIBS_CTL    := -lcurl -lhiredis -ljansson -lcrypto -lm -lpthread
LIBS_BENCH  := -lcurl -ljansson -lcrypto -lm -lpthread

B := build
.DEFAULT_GOAL := all
COMMON_SRC := $(wildcard apps/common/*.c)
INGEST_SRC := $(wildcard apps/ingest/*.c)
AGENT_SRC  := $(wildcard apps/agent/*.c)
CTL_SRC    := $(wildcard apps/ctl/*.c)
BENCH_SRC  := $(wildcard apps/bench/*.c)
INC := -Iapps/common -Iapps/ingest -Iapps/agent -Iapps/ctl -Iapps/bench -I$(B)/gen

# The daemons' built-in defaults come from the Ansible roles' defaults.
GEN_DEFAULTS := $(B)/gen/defaults.h
$(GEN_DEFAULTS): scripts/gen_defaults.py scripts/pbcluster.py apps/conf/pb-ingest.conf.j2 \
                 apps/conf/pb-agent.conf.j2 $(wildcard ansible/roles/*/defaults/main.yml)
	@mkdir -p $(dir $@)
	/usr/bin/python3 scripts/gen_defaults.py $@
$(B)/obj/apps/common/config.o $(B)/san/apps/common/config.o: $(GEN_DEFAULTS)
$(foreach d,obj san,$(patsubst %.c,$(B)/$(d)/%.o,$(CTL_SRC))): $(GEN_DEFAULTS)

# The Redis scripts (apps/lua/*.lua) as one library of Redis Functions, and
# a struct naming each one's arguments (scripts/gen_lua.py).
GEN_LUA := $(B)/gen/lua_functions.h
$(GEN_LUA): scripts/gen_lua.py $(wildcard apps/lua/*.lua)
	@mkdir -p $(dir $@)
	/usr/bin/python3 scripts/gen_lua.py $@
LUA_USERS := apps/agent/queue.o apps/ingest/enqueue.o $(CTL_SRC:.c=.o) apps/common/redis.o
$(foreach d,obj san,$(addprefix $(B)/$(d)/,$(LUA_USERS))): $(GEN_LUA)

# The build's version (scripts/version.sh), rewritten only when it changes,
# so that a new commit rebuilds just what reports it.
GEN_VERSION := $(B)/gen/version.h
$(GEN_VERSION): FORCE
	@mkdir -p $(dir $@)
	@echo '#define PB_BUILD_VERSION "'"$$(scripts/version.sh)"'"' > $@.tmp
	@cmp -s $@.tmp $@ && rm $@.tmp || mv $@.tmp $@
FORCE:
VERSIONED := apps/common/config.o apps/common/stdmetrics.o apps/agent/fetch.o apps/ingest/clients.o
$(foreach d,obj san,$(addprefix $(B)/$(d)/,$(VERSIONED))): $(GEN_VERSION)

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))
san = $(patsubst %.c,$(B)/san/%.o,$(1))

BINS := $(B)/pb-ingest $(B)/pb-agent $(B)/pbctl $(B)/pb-bench

.PHONY: FORCE all deps deb fuzz lab lab-down lint test unit scripts-test tools-test rules integration integration-asan bench-metrics drill drill-smoke drill-shards drill-soak fairness outage docs \
        bench bench-ratios bench-links bench-parts run stop install clean
all: $(BINS)

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(OPT) $(HARDEN) $(CPPFLAGS) $(CFLAGS) $(INC) -MMD -MP -c $< -o $@

$(B)/pb-ingest: $(call obj,$(COMMON_SRC) $(INGEST_SRC))
	$(CC) $(OPT) $(LDHARDEN) $(LDFLAGS) -o $@ $^ $(LIBS_INGEST)

$(B)/pb-agent: $(call obj,$(COMMON_SRC) $(AGENT_SRC))
	$(CC) $(OPT) $(LDHARDEN) $(LDFLAGS) -o $@ $^ $(LIBS_AGENT)

$(B)/pbctl: $(call obj,$(filter-out apps/common/httpd.c apps/common/sdnotify.c,$(COMMON_SRC)) $(CTL_SRC))
	$(CC) $(OPT) $(LDHARDEN) $(LDFLAGS) -o $@ $^ $(LIBS_CTL)

$(B)/pb-bench: $(call obj,$(filter-out apps/common/redis.c apps/common/httpd.c apps/common/sdnotify.c,$(COMMON_SRC)) $(BENCH_SRC))
	$(CC) $(OPT) $(LDHARDEN) $(LDFLAGS) -o $@ $^ $(LIBS_BENCH)

# Unit tests: pure modules, built with AddressSanitizer and UBSan.
SANFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=all
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(B)/unit/%,$(UNIT_SRC))
# The pure modules only: Redis and FastCGI I/O is covered by tests/integration.
UNIT_LIB := $(filter-out apps/common/redis.c apps/common/httpd.c apps/common/sdnotify.c,$(COMMON_SRC)) \
            apps/ingest/validate.c apps/agent/retry.c apps/agent/netpolicy.c apps/agent/heldjob.c apps/agent/handover.c \
            apps/ctl/replinfo.c apps/ctl/args.c apps/bench/idset.c

$(B)/san/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(SANFLAGS) $(INC) -Itests/unit -MMD -MP -c $< -o $@

$(B)/unit/%: $(B)/san/tests/unit/%.o $(B)/san/tests/unit/unit.o $(call san,$(UNIT_LIB))
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ -lcurl -ljansson -lcrypto -lm -lpthread

.SECONDARY:

deps:
	@scripts/deps.sh

# Fuzzing (libFuzzer, with ASan and UBSan): each target in tests/fuzz for
# FUZZ_SECONDS, from its seeds (tests/fuzz/seeds/NAME) and what earlier runs
# found (build/fuzz/corpus/NAME). A crash stops with the input that caused
# it in build/fuzz/ (crash-*): rerun with build/fuzz/fuzz_NAME <that file>.
FUZZ_SECONDS ?= 60
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(patsubst tests/fuzz/%.c,$(B)/fuzz/%,$(FUZZ_SRC))
FUZZFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all

$(B)/fuzz/%: tests/fuzz/%.c $(UNIT_LIB) $(GEN_DEFAULTS) $(GEN_VERSION)
	@mkdir -p $(dir $@)
	clang $(CSTD) $(filter-out -Wno-format-truncation,$(WARN)) -Wno-format-nonliteral \
	  $(FUZZFLAGS) $(INC) -o $@ $< $(UNIT_LIB) -lcurl -ljansson -lcrypto -lm -lpthread

fuzz: deps $(FUZZ_BIN)
	@set -e; for f in $(FUZZ_BIN); do \
	  n=$$(basename $$f); t=$${n#fuzz_}; mkdir -p $(B)/fuzz/corpus/$$t; \
	  echo "fuzz: $$n, $(FUZZ_SECONDS) s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 \
	    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=$(B)/fuzz/ \
	    $(B)/fuzz/corpus/$$t tests/fuzz/seeds/$$t > $(B)/fuzz/$$n.log 2>&1 || \
	    { tail -n 40 $(B)/fuzz/$$n.log; echo "fuzz: $$n FAILED"; exit 1; }; \
	  grep '^Done' $(B)/fuzz/$$n.log; \
	done

# Static analysis, clean or failing: clang-tidy with the checks in
# .clang-tidy, cppcheck with what it needs of jansson in tests/lint.
LINT_SRC := $(wildcard apps/*/*.c) $(UNIT_SRC) $(FUZZ_SRC)
lint: deps $(GEN_DEFAULTS) $(BINS)
	@set -e; for f in $(LINT_SRC); do \
	  clang-tidy -quiet $$f -- $(CSTD) $(INC) -Itests/unit 2>/dev/null; done
	cppcheck --quiet --error-exitcode=1 --inline-suppr \
	  --enable=warning,performance,portability --std=c11 -D_GNU_SOURCE \
	  --library=tests/lint/cppcheck.cfg --suppress=missingIncludeSystem \
	  $(INC) -Itests/unit apps tests/unit tests/fuzz
	/usr/bin/python3 scripts/gen_lua.py --lint
	/usr/bin/python3 scripts/gen_docs.py --check
	/usr/bin/python3 scripts/gen_argspecs.py --check
	/usr/bin/python3 -m pyflakes scripts tests ansible/roles/*/files/pb-*
	tests/lint/hardening.sh $(BINS)
	/usr/bin/python3 tests/lint/link_graph.py $(call obj,$(AGENT_SRC))
	/usr/bin/python3 tests/lint/link_graph.py $(call obj,$(INGEST_SRC))
	/usr/bin/python3 tests/lint/link_graph.py $(call obj,$(CTL_SRC))
	/usr/bin/python3 tests/lint/unit_security.py
	/usr/bin/python3 tests/lint/egress_ranges.py
	/usr/bin/python3 tests/lint/port_offsets.py

unit: $(UNIT_BIN)
	@scripts/run-unit.sh $(UNIT_BIN)

# Each Redis script alone (apps/lua, as gen_lua.py joins it to the prelude)
# against a redis-server the tests start: seconds.
scripts-test: deps
	/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/scripts

# The benchmarks' judgement of their own measurements: a second.
tools-test:
	/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/bench

integration: all
	cd tests/integration && /usr/bin/python3 -m pytest -q -p no:cacheprovider --durations=10

# The integration tests once more against the daemons and pbctl built with
# ASan and UBSan (build/asan/): any report in a daemon's log fails the run.
# Leaks are not checked (a SIGKILLed daemon cannot free; the unit tests and
# fuzzers check them); every memory error and undefined behaviour stops the
# daemon where it happens.
# Their objects are the unit tests' (build/san/, the same flags).
ASAN_BINS := $(B)/asan/pb-ingest $(B)/asan/pb-agent $(B)/asan/pbctl
$(B)/asan/pb-ingest: $(call san,$(COMMON_SRC) $(INGEST_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(LIBS_INGEST)
$(B)/asan/pb-agent: $(call san,$(COMMON_SRC) $(AGENT_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(LIBS_AGENT)
$(B)/asan/pbctl: $(call san,$(filter-out apps/common/httpd.c apps/common/sdnotify.c,$(COMMON_SRC)) $(CTL_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(LIBS_CTL)

# ASAN_IGNORE: test files left out (CI leaves out those that run the same
# code paths longer: isolation, metrics, password rotation).
ASAN_IGNORE ?=
integration-asan: all $(ASAN_BINS)
	cd tests/integration && PB_BIN_DIR=$(CURDIR)/$(B)/asan \
	  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  /usr/bin/python3 -m pytest -q -p no:cacheprovider --durations=10 \
	  $(addprefix --ignore=,$(ASAN_IGNORE))
	@if grep -l -E 'ERROR: AddressSanitizer|runtime error:' run/test-integration/log/*.log \
	    run/test-metrics/log/*.log run/test-shards/log/*.log 2>/dev/null; then echo "integration-asan: sanitizer reports above"; \
	    exit 1; fi; echo "integration-asan: no sanitizer report in any daemon's log"

# The reference tables of docs/ and the roles' argument specs written from
# the code and the roles' defaults (make lint checks both).
docs: $(BINS)
	/usr/bin/python3 scripts/gen_docs.py
	/usr/bin/python3 scripts/gen_argspecs.py

# The alert rules: valid, and each firing when it should (promtool).
rules:
	promtool check rules monitoring/alerts.yml
	promtool test rules monitoring/alerts_test.yml

# Failover drills on network-namespace hosts (root). DRILL=name runs one.
DRILL_PYTEST := /usr/bin/python3 -m pytest -q -s -p no:cacheprovider
drill: all
	$(DRILL_PYTEST) tests/drill/test_drills.py $(if $(DRILL),-k "$(DRILL)")

drill-smoke: all
	$(DRILL_PYTEST) tests/drill/test_drills.py -k master_sigkill

# Drills with two shards (cluster/drill-shards.yml): one shard's master
# killed under load, one cut off with a backlog. DRILL=name runs one;
# DRILL_TOPOLOGY=cluster/drill.yml the same on one master, to compare.
drill-shards: all
	PB_DRILL_RUN=drill-shards PB_DRILL_TOPOLOGY=$(or $(DRILL_TOPOLOGY),cluster/drill-shards.yml) \
	  $(DRILL_PYTEST) tests/drill/test_shard_drills.py $(if $(DRILL),-k "$(DRILL)")

# test_fairness.py with the backlog of issue 34 (make test runs it with
# 15,000, what its cluster's queue holds).
fairness: all
	cd tests/integration && FAIRNESS_BACKLOG=100000 PB_TEST_MAX_QUEUE=120000 \
	  /usr/bin/python3 -m pytest -q -s -p no:cacheprovider test_fairness.py

# A partner down for 10 minutes with the default settings (~20 min):
# nothing is a dead letter (tests/outage; OUTAGE_S shortens the outage).
outage: all
	/usr/bin/python3 -m pytest -q -s -p no:cacheprovider tests/outage

# The partition soak: SOAK_N partitions (about 40 s each), hosts cut in turn.
SOAK_N ?= 20
drill-soak: all
	PB_DRILL_RUN=drill-soak SOAK_N=$(SOAK_N) SOAK_CUTS='$(SOAK_CUTS)' \
	  $(DRILL_PYTEST) tests/drill/test_soak.py

# The pipeline against the ceilings of its parts, in one run (minutes).
bench: deps
	@$(MAKE) --no-print-directory all
	BENCH_SET='$(BENCH_SET)' BENCH_SIGN='$(BENCH_SIGN)' /usr/bin/python3 tests/bench/bench.py

# Bytes a postback on each Redis link and in the AOF alone (~1 min); a
# measurement that cannot be trusted fails it (BENCH_FORCE_AOF_REWRITE=1
# forces an AOF rewrite during it, to show that).
bench-links: deps
	@$(MAKE) --no-print-directory all
	BENCH_ONLY=links BENCH_SET='$(BENCH_SET)' /usr/bin/python3 tests/bench/bench.py

# Issue 14's two ratios alone, BENCH_ROUNDS rounds (default 3, ~30 s each).
bench-ratios: deps
	@$(MAKE) --no-print-directory all
	BENCH_ONLY=ratios BENCH_SET='$(BENCH_SET)' /usr/bin/python3 tests/bench/bench.py

# What each part spends in CPU time a request and a postback, and the cost
# targets, BENCH_ROUNDS rounds (~2 min); tests/bench/parts.py says more.
bench-parts: deps
	@$(MAKE) --no-print-directory all
	BENCH_SET='$(BENCH_SET)' BENCH_SHARDS='$(BENCH_SHARDS)' BENCH_SIGN='$(BENCH_SIGN)' \
	BENCH_AGAINST='$(BENCH_AGAINST)' BENCH_FORCE_AOF_REWRITE='$(BENCH_FORCE_AOF_REWRITE)' \
	/usr/bin/python3 tests/bench/parts.py

# What the metrics cost: the bench's runs with and without them (~6 min).
bench-metrics: deps
	@$(MAKE) --no-print-directory all
	/usr/bin/python3 tests/bench/metrics_cost.py

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory scripts-test
	@$(MAKE) --no-print-directory tools-test
	@$(MAKE) --no-print-directory rules
	@$(MAKE) --no-print-directory integration
	@$(MAKE) --no-print-directory drill-smoke

# The packages (debhelper, debian/) and lintian: needs build dependencies only.
deb:
	@scripts/deps.sh deb
	@scripts/mkdeb.sh

# site.yml on systemd-nspawn machines: lint, deploy, tests, always torn down.
lab: deps
	@scripts/deps.sh lab
	@$(MAKE) --no-print-directory all
	tests/lab/run.sh

lab-down:
	tests/lab/lab.py down

# make run SHARDS=2: two shards (cluster/local.yml); a running cluster keeps its number.
run: deps
	@$(MAKE) --no-print-directory all
	@PB_SHARDS=$(SHARDS) scripts/pbcluster.py up

stop:
	@scripts/pbcluster.py down

install: all
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 $(BINS) $(DESTDIR)$(BINDIR)/

clean:
	rm -rf $(B)

-include $(shell find $(B) -name '*.d' 2>/dev/null)
