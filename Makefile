# phn - the ParallelHassnes toolkit.  GNU and BSD make.
PREFIX = /usr/local
BINDIR = $(PREFIX)/bin
MANDIR = $(PREFIX)/share/man
DATADIR = $(PREFIX)/share/phn
DESTDIR =

CC = cc
CFLAGS = -O2 -g
JSONC_CFLAGS = `pkg-config --cflags json-c 2>/dev/null`
JSONC_LIBS = `pkg-config --libs json-c 2>/dev/null || echo -ljson-c`
SAN_FLAGS =
PHN_CFLAGS = -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE \
	-DPHN_DATADIR=\"$(DATADIR)\" -Ilib $(JSONC_CFLAGS) $(SAN_FLAGS)
LDLIBS = $(JSONC_LIBS) -lmd -lm

BATS = bats
BATS_JOBS = 2
# The suites make test runs; check-sanitize leaves out SAN_SKIP_SUITES,
# the slow suites that drive real outside parts (a cluster, a browser)
# and exercise no more of our C than the plain pass already did (the
# load test also bounds the server's memory, which ASan multiplies).
BATS_SUITES = tests
SAN_SKIP_SUITES = tests/61-api-load.bats tests/62-api-dashboard.bats \
	tests/90-slurm.bats

# The programs, by what they do.
CMDS_STORE = cmd/phn-init cmd/phn-ingest
CMDS_CLAIM = cmd/phn-claim cmd/phn-close-batch cmd/phn-budget cmd/phn-fsck
CMDS_OVERRIDE = cmd/phn-force-retry cmd/phn-mark-failed cmd/phn-requeue
CMDS_RUN = cmd/phn-spawn cmd/phn-heartbeat cmd/phn-replay
CMDS_OBSERVE = cmd/phn-score cmd/phn-cancel cmd/phn-gc cmd/phn-artifact \
	cmd/phn-tail
CMDS_LIBPHN = $(CMDS_STORE) $(CMDS_CLAIM) $(CMDS_OVERRIDE) $(CMDS_RUN) \
	$(CMDS_OBSERVE)
CMDS_API = cmd/phn-api
CMDS = $(CMDS_LIBPHN) $(CMDS_API)
SCRIPTS = cmd/phn cmd/phn-slurm

# The library (lib/libphn.a, not installed), by meaning.  Every program
# links the archive, so it takes exactly the objects it uses:
#   core    errors, atomic writes, locks, strict JSON, digests, time, ids,
#           paths and the store's layout, the harness config, child
#           processes, the command line: every program
#   table   the Launch Table and JSON Schema validators: phn-ingest,
#           phn-spawn (the Run Report), phn-api
#   store   attempts, state.json, current.json, liveness and reaping,
#           operator overrides, the runner pool: every program that
#           reads the store
#   policy  the step policy (policy.h) and the token budget (budget.c):
#           phn-claim, phn-score
#   claim   the schedule and ready indexes, the claimer (claim.h):
#           phn-claim, and whoever ends an attempt or readies a step
#   run     running one attempt (signals, spawn, supervise, codex, report,
#           workspace) and replaying one (replay): phn-spawn,
#           phn-heartbeat, phn-replay
#   observe the scoreboards and the operator commands' helpers:
#           phn-score, phn-cancel, phn-gc, phn-artifact, phn-tail;
#           auto-remediation (remedy.c): phn-heartbeat --remediate
LIB_CORE = lib/err.o lib/atomic.o lib/lock.o lib/jscan.o lib/json.o \
	lib/sha.o lib/time.o lib/id.o lib/path.o lib/layout.o lib/config.o \
	lib/proc.o lib/opt.o
LIB_TABLE = lib/lt.o lib/schema.o
LIB_STORE = lib/store.o lib/liveness.o lib/overrides.o lib/runner.o \
	lib/summary.o lib/pause.o
LIB_POLICY = lib/policy.o lib/budget.o
LIB_CLAIM = lib/sched.o lib/claim.o lib/fsck.o
LIB_RUN = lib/signals.o lib/spawn.o lib/codex.o lib/supervise.o lib/report.o \
	lib/workspace.o lib/replay.o
LIB_OBSERVE = lib/score.o lib/ops.o lib/remedy.o lib/joblog.o
LIBOBJ = $(LIB_CORE) $(LIB_TABLE) $(LIB_STORE) $(LIB_POLICY) $(LIB_CLAIM) \
	$(LIB_RUN) $(LIB_OBSERVE)
MAN1_INGEST = man/phn-ingest.1 man/phn-init.1 man/phn.1
MAN1_CLAIM = man/phn-claim.1 man/phn-force-retry.1 man/phn-mark-failed.1 \
	man/phn-slurm.1 \
	man/phn-requeue.1 man/phn-close-batch.1 man/phn-budget.1 man/phn-fsck.1
MAN1_SPAWN = man/phn-spawn.1 man/phn-heartbeat.1 man/phn-replay.1
MAN1_SCORE = man/phn-score.1 man/phn-cancel.1 man/phn-gc.1 \
	man/phn-artifact.1 man/phn-tail.1
MAN1_API = man/phn-api.1
MAN1 = $(MAN1_INGEST) $(MAN1_CLAIM) $(MAN1_SPAWN) $(MAN1_SCORE) $(MAN1_API)
MAN5 = man/phn.5
MAN7 = man/phn.7
# Test-only programs, built by make test.
TESTPROGS = tests/t-schema tests/t-claim1 tests/t-finish tests/t-policy-diff
# The libFuzzer targets (tests/fuzz/*.c), built with clang, ASan, UBSan.
FUZZ_CC = clang
FUZZ_SECONDS = 600
FUZZ_CHECK_SECONDS = 5

all: $(CMDS)

$(LIBOBJ): lib/phn.h lib/policy.h lib/claim.h lib/run.h lib/score.h
lib/libphn.a: $(LIBOBJ)
	rm -f $@
	ar rcs $@ $(LIBOBJ)

.SUFFIXES: .c .o
.c.o:
	$(CC) $(PHN_CFLAGS) $(CFLAGS) -c -o $@ $<
# A program from its one .c file (cmd/phn-x from cmd/phn-x.c), so that
# editing the .c rebuilds it; the library is an extra prerequisite.
.c:
	$(CC) $(PHN_CFLAGS) $(CFLAGS) -o $@ $< lib/libphn.a $(LDFLAGS) $(LDLIBS)

$(CMDS_LIBPHN) $(TESTPROGS): lib/libphn.a lib/phn.h

# The three operator overrides share their command line (cmd/override.c).
$(CMDS_OVERRIDE): cmd/override.c cmd/override.h
	$(CC) $(PHN_CFLAGS) $(CFLAGS) -o $@ $@.c cmd/override.c lib/libphn.a \
		$(LDFLAGS) $(LDLIBS)
cmd/phn-force-retry: cmd/phn-force-retry.c
cmd/phn-mark-failed: cmd/phn-mark-failed.c
cmd/phn-requeue: cmd/phn-requeue.c

# Test programs that end attempts share tests/t-lib.c.
tests/t-lib.o: tests/t-lib.h lib/phn.h
tests/t-finish: tests/t-finish.c
tests/t-policy-diff: tests/t-policy-diff.c
tests/t-finish tests/t-policy-diff: tests/t-lib.o tests/t-lib.h lib/claim.h
	$(CC) $(PHN_CFLAGS) $(CFLAGS) -o $@ $@.c tests/t-lib.o lib/libphn.a \
		$(LDFLAGS) $(LDLIBS)

# Only the HTTP façade links libmicrohttpd.
cmd/phn-api: cmd/phn-api.c cmd/api-routes.c cmd/api.h lib/libphn.a lib/phn.h
	$(CC) $(PHN_CFLAGS) $(CFLAGS) -o $@ cmd/phn-api.c cmd/api-routes.c \
		lib/libphn.a $(LDFLAGS) -lmicrohttpd -lpthread $(LDLIBS)

deps:
	sh .ci/deps.sh

check: deps
	$(MAKE) all
	$(MAKE) test

test: all $(TESTPROGS)
	mandoc -Tlint -W warning $(MAN1) $(MAN5) $(MAN7)
	$(BATS) --jobs $(BATS_JOBS) $(BATS_SUITES)
	$(MAKE) fuzz-check

# ASan+UBSan build of everything, then the whole suite against it.
check-sanitize: deps
	$(MAKE) clean
	$(MAKE) all SAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
	ASAN_OPTIONS=detect_leaks=1 $(MAKE) test SAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	    BATS_SUITES="`for f in tests/*.bats; do case ' $(SAN_SKIP_SUITES) ' in *" $$f "*) ;; *) printf "%s " $$f;; esac; done`"

# Every fuzz target for seconds (part of make test), or FUZZ_SECONDS each;
# any crash, leak or timeout fails.  No clang with libFuzzer fails too.
fuzz-check:
	FUZZ_CC="$(FUZZ_CC)" FUZZ_CFLAGS="$(JSONC_CFLAGS)" \
	    FUZZ_LIBS="$(LDLIBS)" sh tests/fuzz/fuzz.sh $(FUZZ_CHECK_SECONDS)
fuzz:
	FUZZ_CC="$(FUZZ_CC)" FUZZ_CFLAGS="$(JSONC_CFLAGS)" \
	    FUZZ_LIBS="$(LDLIBS)" sh tests/fuzz/fuzz.sh $(FUZZ_SECONDS)

# The main paths of the programs under valgrind memcheck (tests/valgrind.sh):
# any memory error or definite/indirect leak fails.  Slow, not part of
# check; needs a plain build (not SAN_FLAGS), with gcc (valgrind 3.19
# cannot read clang's DWARF 5).
valgrind: all
	sh tests/valgrind.sh

# Mutation testing (bench/mutate.sh, bench/mutants.txt); slow, not part
# of check.  MUTATE_FLAGS passes options, e.g. MUTATE_FLAGS="-k M01,M02".
mutate:
	sh bench/mutate.sh $(MUTATE_FLAGS)

# The long crash run (bench/crash.sh): CRASH_TRIALS seeded trials of
# kill -9 at random points, then recovery and checks; CRASH_SEED reruns
# one.  tests/17-crash.bats runs a bounded one in make test.
CRASH_TRIALS = 200
crash: all
	CRASH_TRIALS=$(CRASH_TRIALS) CRASH_SEED=$(CRASH_SEED) sh bench/crash.sh

demo: deps
	$(MAKE) all
	sh examples/demo.sh

install: all
	mkdir -p $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(DATADIR)
	install -m 0755 $(CMDS) $(SCRIPTS) $(DESTDIR)$(BINDIR)
	install -m 0644 $(MAN1) $(DESTDIR)$(MANDIR)/man1
	install -m 0644 $(MAN5) $(DESTDIR)$(MANDIR)/man5
	install -m 0644 $(MAN7) $(DESTDIR)$(MANDIR)/man7
	install -m 0644 run_report.schema.json $(DESTDIR)$(DATADIR)
	install -m 0644 share/dashboard.html $(DESTDIR)$(DATADIR)

uninstall:
	for f in $(CMDS) $(SCRIPTS); do rm -f $(DESTDIR)$(BINDIR)/$${f#cmd/}; done
	for f in $(MAN1); do rm -f $(DESTDIR)$(MANDIR)/man1/$${f#man/}; done
	for f in $(MAN5); do rm -f $(DESTDIR)$(MANDIR)/man5/$${f#man/}; done
	for f in $(MAN7); do rm -f $(DESTDIR)$(MANDIR)/man7/$${f#man/}; done
	rm -f $(DESTDIR)$(DATADIR)/run_report.schema.json
	rm -f $(DESTDIR)$(DATADIR)/dashboard.html
	-rmdir $(DESTDIR)$(DATADIR)

# The performance table (bench/table.sh; BENCH_SIZES="1000" for a quick one).
bench: all tests/t-finish
	nice sh bench/table.sh

clean:
	rm -f $(CMDS) $(TESTPROGS) lib/*.o lib/libphn.a tests/*.o
	rm -rf tests/fuzz/build

.PHONY: all deps check test check-sanitize fuzz-check fuzz valgrind mutate crash demo install uninstall clean bench
