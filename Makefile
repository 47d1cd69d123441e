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

# One line per area, so that work on one area does not touch another's.
CMDS_INGEST = cmd/phn-ingest cmd/phn-init
CMDS_CLAIM = cmd/phn-claim cmd/phn-force-retry cmd/phn-mark-failed \
	cmd/phn-requeue cmd/phn-close-batch
CMDS_SPAWN = cmd/phn-spawn cmd/phn-heartbeat
CMDS_SCORE = cmd/phn-score cmd/phn-cancel cmd/phn-gc cmd/phn-artifact \
	cmd/phn-tail
CMDS_LIBPHN = $(CMDS_INGEST) $(CMDS_CLAIM) $(CMDS_SPAWN) $(CMDS_SCORE)
CMDS_API = cmd/phn-api
CMDS = $(CMDS_LIBPHN) $(CMDS_API)
SCRIPTS = cmd/phn
LIBOBJ_BASE = lib/err.o lib/atomic.o lib/lock.o lib/jscan.o lib/json.o \
	lib/sha.o lib/time.o lib/id.o lib/path.o lib/config.o lib/lt.o \
	lib/store.o lib/schema.o lib/run.o
LIBOBJ_CLAIM = lib/sched.o lib/claim.o lib/overrides.o
LIBOBJ_SPAWN = lib/spawn.o lib/codex.o lib/supervise.o lib/report.o \
	lib/workspace.o lib/liveness.o
LIBOBJ_SCORE = lib/score.o lib/ops.o
LIBOBJ = $(LIBOBJ_BASE) $(LIBOBJ_CLAIM) $(LIBOBJ_SPAWN) $(LIBOBJ_SCORE)
MAN1_INGEST = man/phn-ingest.1 man/phn-init.1 man/phn.1
MAN1_CLAIM = man/phn-claim.1 man/phn-force-retry.1 man/phn-mark-failed.1 \
	man/phn-requeue.1 man/phn-close-batch.1
MAN1_SPAWN = man/phn-spawn.1 man/phn-heartbeat.1
MAN1_SCORE = man/phn-score.1 man/phn-cancel.1 man/phn-gc.1 \
	man/phn-artifact.1 man/phn-tail.1
MAN1_API = man/phn-api.1
MAN1 = $(MAN1_INGEST) $(MAN1_CLAIM) $(MAN1_SPAWN) $(MAN1_SCORE) $(MAN1_API)
MAN5 = man/phn.5
MAN7 = man/phn.7
# Test-only programs, built by make test.
TESTPROGS = tests/t-schema tests/t-claim1 tests/t-finish

all: $(CMDS)

$(LIBOBJ): lib/phn.h
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

# Only the HTTP façade links libmicrohttpd.
cmd/phn-api: cmd/phn-api.c lib/libphn.a lib/phn.h
	$(CC) $(PHN_CFLAGS) $(CFLAGS) -o $@ cmd/phn-api.c lib/libphn.a \
		$(LDFLAGS) -lmicrohttpd $(LDLIBS)

deps:
	sh .ci/deps.sh

check: deps
	$(MAKE) all
	$(MAKE) test

test: all $(TESTPROGS)
	mandoc -Tlint -W warning $(MAN1) $(MAN5) $(MAN7)
	$(BATS) --jobs $(BATS_JOBS) tests

# ASan+UBSan build of everything, then the whole suite against it.
check-sanitize: deps
	$(MAKE) clean
	$(MAKE) all SAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
	ASAN_OPTIONS=detect_leaks=1 $(MAKE) test SAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"

# Mutation testing (bench/mutate.sh, bench/mutants.txt); slow, not part
# of check.  MUTATE_FLAGS passes options, e.g. MUTATE_FLAGS="-k M01,M02".
mutate:
	sh bench/mutate.sh $(MUTATE_FLAGS)

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

uninstall:
	for f in $(CMDS) $(SCRIPTS); do rm -f $(DESTDIR)$(BINDIR)/$${f#cmd/}; done
	for f in $(MAN1); do rm -f $(DESTDIR)$(MANDIR)/man1/$${f#man/}; done
	for f in $(MAN5); do rm -f $(DESTDIR)$(MANDIR)/man5/$${f#man/}; done
	for f in $(MAN7); do rm -f $(DESTDIR)$(MANDIR)/man7/$${f#man/}; done
	rm -f $(DESTDIR)$(DATADIR)/run_report.schema.json
	-rmdir $(DESTDIR)$(DATADIR)

clean:
	rm -f $(CMDS) $(TESTPROGS) lib/*.o lib/libphn.a

.PHONY: all deps check test check-sanitize mutate demo install uninstall clean
