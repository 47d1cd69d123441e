#!/bin/sh
# bench/mutate.sh - mutation testing: would the tests notice a bug?
#
# Each mutant in bench/mutants.txt is one realistic bug (a lock removed,
# a limit off by one, an exit status ignored, ...), written as data: the
# file, an exact text that must occur there exactly once, its
# replacement, and the bats files that should catch it.  For each mutant
# alone the script copies the tree to a scratch directory, applies the
# mutant, builds, and runs the mutant's bats files in order, each under
# a timeout, stopping at the first file that fails.  Each mutant is
#   KILLED     a test failed (the first failing test is named) or a
#              file timed out (named with "timeout": a hang counts);
#   SURVIVED   every listed file passed: no test noticed the bug;
#   STILLBORN  it does not compile: left out of the score;
#   STALE      its search text does not occur exactly once any more (the
#              code moved): left out of the score; update the list.
# The score is killed / (killed + survived).
#
# The caller's tree is never modified: the copy holds the tracked files
# and the untracked, not ignored ones, as they are now (uncommitted
# changes included).  Before the mutants the unmutated copy must pass
# every bats file the selected mutants use (a failing file would "kill"
# every mutant that runs it); -n skips that check.
#
# Usage: bench/mutate.sh [-bKln] [-f LIST] [-j N] [-k ID[,ID...]] [-t SECS]
#   -l       list the mutants and check that each one applies: fast, no
#            build, no tests; exit 1 if any is stale
#   -b       build each mutant but run no tests (finds stillborns)
#   -k IDS   only these mutants (comma-separated; -k may be repeated)
#   -j N     N mutants at a time (default 1)
#   -t SECS  timeout of one bats file (default 400)
#   -n       no baseline run of the unmutated tree
#   -f LIST  the mutant list (default bench/mutants.txt)
#   -K       keep the scratch directory (its path is printed)
# MUTATE_DIR is where scratch directories go (default $TMPDIR or /tmp).
#
# The format of the list is described at the top of bench/mutants.txt.
# Exit status: 0 when the run finished (whatever the score), 1 when -l
# found a stale mutant or the baseline failed, 100 on usage or list
# errors, 111 when the tree does not build.  Needs python3, bats, GNU
# timeout, make and a C compiler.
set -eu

prog=bench/mutate.sh
here=$(cd "$(dirname "$0")/.." && pwd)
list=$here/bench/mutants.txt
lflag=0 bflag=0 nflag=0 keep=0 jobs=1 tmo=400 ids=

usage() {
	echo "usage: $prog [-bKln] [-f LIST] [-j N] [-k ID[,ID...]] [-t SECS]" >&2
	exit 100
}
while getopts bf:j:Kk:lnt: o; do
	case $o in
	b) bflag=1 ;;
	f) list=$OPTARG ;;
	j) jobs=$OPTARG ;;
	K) keep=1 ;;
	k) ids="$ids $(printf '%s' "$OPTARG" | tr ',' ' ')" ;;
	l) lflag=1 ;;
	n) nflag=1 ;;
	t) tmo=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage
case $jobs in '' | *[!0-9]* | 0) usage ;; esac
case $tmo in '' | *[!0-9]* | 0) usage ;; esac
case $list in /*) ;; *) list=$(pwd)/$list ;; esac
[ -r "$list" ] || { echo "$prog: $list: cannot read" >&2; exit 100; }
command -v python3 >/dev/null || { echo "$prog: needs python3" >&2; exit 100; }

# The scratch directory holds the helper, the copies and the results.
work=$(mktemp -d "${MUTATE_DIR:-${TMPDIR:-/tmp}}/phn-mutate.XXXXXX")
cleanup() {
	if [ "$keep" = 1 ]; then
		echo "$prog: scratch kept in $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' HUP INT PIPE TERM

# The helper: parse the list, check it, apply a mutant, copy the tree.
cat >"$work/m.py" <<'PY'
import os, re, shutil, subprocess, sys

def die(msg):
    sys.stderr.write("bench/mutate.sh: %s\n" % msg)
    sys.exit(100)

KEYS = ("id", "file", "desc", "tests", "search", "replace")

def parse(path):
    """Records separated by blank lines; see the head of mutants.txt."""
    muts, cur, last = [], None, None
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for no, line in enumerate(lines + [""], 1):
        if line.startswith("#"):
            continue
        if line.strip() == "":
            if cur is not None:
                muts.append(cur)
            cur, last = None, None
            continue
        m = re.match(r"([a-z]+):[ \t]?(.*)$", line)
        if m is None or m.group(1) not in KEYS:
            die("%s:%d: expected KEY: VALUE with KEY one of %s"
                % (path, no, ", ".join(KEYS)))
        k, v = m.group(1), m.group(2)
        if cur is None:
            cur = {"line": no, "pairs": []}
        if k == "search":
            cur["pairs"].append([v.strip(), None])
        elif k == "replace":
            if not cur["pairs"]:
                die("%s:%d: replace: before search:" % (path, no))
            p = cur["pairs"][-1]
            # Consecutive replace: lines are one text, joined by newlines.
            p[1] = v if last != "replace" else p[1] + "\n" + v
        elif k in cur:
            die("%s:%d: %s: given twice" % (path, no, k))
        else:
            cur[k] = v.strip()
        last = k
    seen = set()
    for m in muts:
        where = "%s:%d" % (path, m["line"])
        for k in ("id", "file", "desc", "tests"):
            if not m.get(k):
                die("%s: mutant without %s:" % (where, k))
        if not re.match(r"^[A-Za-z0-9_-]+$", m["id"]):
            die("%s: bad id %r" % (where, m["id"]))
        if m["id"] in seen:
            die("%s: id %s given twice" % (where, m["id"]))
        seen.add(m["id"])
        if not m["pairs"]:
            die("%s: %s has no search:" % (where, m["id"]))
        for s, r in m["pairs"]:
            if not s:
                die("%s: %s: empty search:" % (where, m["id"]))
            if r is None:
                die("%s: %s: search: without replace:" % (where, m["id"]))
        m["tests"] = m["tests"].split()
    return muts

def pattern(s):
    """Whitespace in the search text matches any run of whitespace
    (newlines included); everything else matches exactly."""
    return re.compile(r"\s+".join(re.escape(w) for w in s.split()))

def mutate(m, tree):
    """The mutated text of m's file, or (None, why) when stale."""
    f = os.path.join(tree, m["file"])
    try:
        with open(f, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as e:
        return None, "%s: %s" % (m["file"], e.strerror)
    for i, (s, r) in enumerate(m["pairs"], 1):
        hits = list(pattern(s).finditer(text))
        if len(hits) != 1:
            tag = "search" if len(m["pairs"]) == 1 else "search %d" % i
            return None, "%s found %d times in %s (want 1): %s" % (
                tag, len(hits), m["file"], s)
        h = hits[0]
        new = text[:h.start()] + r + text[h.end():]
        if new == text:
            return None, "the replacement changes nothing"
        text = new
    return text, None

def select(muts, ids):
    if not ids:
        return muts
    byid = {m["id"]: m for m in muts}
    for i in ids:
        if i not in byid:
            die("no mutant %s in the list" % i)
    return [m for m in muts if m["id"] in ids]

def cmd_check(listf, tree, *ids):
    """One line per mutant: ID TAB ok|STALE TAB file TAB tests TAB desc
    (or the reason it is stale, after STALE)."""
    for m in select(parse(listf), set(ids)):
        _, why = mutate(m, tree)
        for t in m["tests"]:
            if not os.path.isfile(os.path.join(tree, "tests", t + ".bats")):
                why = why or "no test file tests/%s.bats" % t
        print("\t".join([m["id"], "STALE: " + why if why else "ok", m["file"],
                         " ".join(m["tests"]), m["desc"]]))

def cmd_apply(listf, tree, mid):
    m = select(parse(listf), {mid})[0]
    text, why = mutate(m, tree)
    if text is None:
        sys.stderr.write("bench/mutate.sh: %s: stale: %s\n" % (mid, why))
        sys.exit(1)
    with open(os.path.join(tree, m["file"]), "w", encoding="utf-8") as fh:
        fh.write(text)

def cmd_copy(src, dst):
    """The tracked and the untracked, not ignored files as they are now."""
    out = subprocess.run(["git", "-C", src, "ls-files", "-z", "-c", "-o",
                          "--exclude-standard"], check=True,
                         stdout=subprocess.PIPE).stdout
    for rel in sorted(set(out.decode().split("\0")) - {""}):
        s, d = os.path.join(src, rel), os.path.join(dst, rel)
        if not os.path.lexists(s) or os.path.isdir(s):
            continue        # deleted, or a submodule
        os.makedirs(os.path.dirname(d), exist_ok=True)
        if os.path.islink(s):
            os.symlink(os.readlink(s), d)
        else:
            shutil.copy2(s, d)

{"check": cmd_check, "apply": cmd_apply, "copy": cmd_copy}[sys.argv[1]](
    *sys.argv[2:])
PY
helper() { python3 "$work/m.py" "$@"; }

# The selected mutants: ID TAB ok|STALE:... TAB FILE TAB TESTS TAB DESC.
# shellcheck disable=SC2086
helper check "$list" "$here" $ids >"$work/check"
nstale=$(awk -F '\t' '$2 != "ok"' "$work/check" | wc -l)

if [ "$lflag" = 1 ]; then
	awk -F '\t' '{ printf "%-4s %-5s %-22s %s\n", $1,
	    ($2 == "ok" ? "ok" : "STALE"), $3, $5
	    printf "     tests: %s\n", $4
	    if ($2 != "ok") printf "     %s\n", substr($2, 8) }' "$work/check"
	n=$(wc -l <"$work/check")
	echo "$n mutants, $nstale stale"
	[ "$nstale" -eq 0 ] || exit 1
	exit 0
fi

# Everything the tests could be steered with from outside is unset, so
# that they test the scratch copy.
for v in $(env | sed -n 's/^\(PHN_[A-Za-z0-9_]*\)=.*/\1/p;
    s/^\(PARALLELHASSNES_[A-Za-z0-9_]*\)=.*/\1/p'); do
	case $v in PHN_CODEX) ;; *) unset "$v" ;; esac
done
unset T_FINISH T_CLAIM

# Build the unmutated copy once; each mutant starts from a copy of it
# (timestamps kept), so make rebuilds only what the mutant touches.
base=$work/base
mkdir "$base"
helper copy "$here" "$base"
# shellcheck disable=SC2016 # $(TESTPROGS) is make's
testprogs=$(printf 'phn-mutate-print:\n\t@echo $(TESTPROGS)\n' |
    make -s -C "$base" -f Makefile -f - phn-mutate-print)
build() { # DIR LOG
	# shellcheck disable=SC2086 # a list of targets
	make -C "$1" -j2 all $testprogs >"$2" 2>&1
}
echo "building the unmutated tree in $base"
if ! build "$base" "$work/base.build"; then
	tail -n 20 "$work/base.build" >&2
	echo "$prog: the unmutated tree does not build" >&2
	exit 111
fi

# Kill what a test run left behind: processes whose command line names
# the mutant's scratch directory (nothing else can name it).
# (Functions share the script's variables: each uses names of its own.)
strays() { # DIR
	[ -d /proc ] || return 0
	for s_proc in /proc/[0-9]*; do
		s_pid=${s_proc#/proc/}
		[ "$s_pid" != $$ ] || continue
		if tr '\0' ' ' 2>/dev/null <"$s_proc/cmdline" |
		    grep -qF "$1/"; then
			kill -KILL "$s_pid" 2>/dev/null || true
		fi
	done
}

# runbats DIR FILE OUT: run one bats file under the timeout; its status.
runbats() {
	(cd "$1" && exec timeout -k 10 "$tmo" bats --tap "tests/$2.bats") \
	    >"$3" 2>&1 &
	r_pid=$!
	r_st=0
	wait "$r_pid" || r_st=$?
	# timeout leads its own process group: end what is left of it.
	kill -KILL "-$r_pid" 2>/dev/null || true
	strays "$1"
	return "$r_st"
}

# verdict OUT FILE STATUS: why a failing bats file failed.
verdict() {
	v_t=$(sed -n 's/^not ok \([0-9]*\) \(.*\)$/\1 \2/p' "$1" | head -n 1)
	if [ -n "$v_t" ]; then
		echo "$2#$v_t"
	elif [ "$3" -eq 124 ] || [ "$3" -eq 137 ]; then
		echo "$2 (timeout after ${tmo}s)"
	else
		echo "$2 (bats exit $3, no failing test)"
	fi
}

# Baseline: the unmutated tree must pass every file the mutants use.
if [ "$nflag" = 0 ] && [ "$bflag" = 0 ]; then
	files=$(awk -F '\t' '$2 == "ok" { print $4 }' "$work/check" |
	    tr ' ' '\n' | awk 'NF && !seen[$0]++')
	bad=0
	for f in $files; do
		t0=$(date +%s)
		st=0
		runbats "$base" "$f" "$work/base.$f.tap" || st=$?
		t1=$(date +%s)
		if [ "$st" -eq 0 ]; then
			echo "baseline $f: ok ($((t1 - t0))s)"
		else
			echo "baseline $f: FAILED $(verdict "$work/base.$f.tap" "$f" "$st")"
			bad=1
		fi
	done
	if [ "$bad" = 1 ]; then
		echo "$prog: the unmutated tree fails; fix that first (or use -n)" >&2
		exit 1
	fi
fi

# one ID: run one mutant; writes $work/res.ID (ID TAB VERDICT TAB DETAIL).
one() {
	line=$(awk -F '\t' -v id="$1" '$1 == id' "$work/check")
	status=$(printf '%s\n' "$line" | cut -f 2)
	tests=$(printf '%s\n' "$line" | cut -f 4)
	desc=$(printf '%s\n' "$line" | cut -f 5)
	d=$work/m.$1
	t0=$(date +%s)
	if [ "$status" != ok ]; then
		v=STALE why=${status#STALE: }
	else
		rm -rf "$d"
		cp -a "$base" "$d"
		if ! helper apply "$list" "$d" "$1" 2>"$d.apply"; then
			v=STALE why=$(cat "$d.apply")
		elif ! build "$d" "$d.build"; then
			v=STILLBORN why=$(grep -m 1 'error:' "$d.build" || true)
		elif [ "$bflag" = 1 ]; then
			v=BUILT why=
		else
			v=SURVIVED why=$tests
			for f in $tests; do
				st=0
				runbats "$d" "$f" "$d.$f.tap" || st=$?
				if [ "$st" -ne 0 ]; then
					v=KILLED why=$(verdict "$d.$f.tap" "$f" "$st")
					break
				fi
			done
		fi
		[ "$keep" = 1 ] || rm -rf "$work/m.$1"
	fi
	t1=$(date +%s)
	printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$v" "$why" "$((t1 - t0))" \
	    "$desc" >"$work/res.$1"
	printf '%-4s %-9s %s  [%ss]\n     %s\n' "$1" "$v" "$why" \
	    "$((t1 - t0))" "$desc"
}

# Workers take the next unclaimed mutant (mkdir is the atomic claim).
worker() {
	# shellcheck disable=SC2013 # ids are single words
	for id in $(cut -f 1 "$work/check"); do
		mkdir "$work/claim.$id" 2>/dev/null || continue
		one "$id"
	done
}
n=$(wc -l <"$work/check")
echo "$n mutants, $jobs at a time, bats files time out after ${tmo}s"
if [ "$jobs" -eq 1 ]; then
	worker
else
	i=0 pids=
	while [ "$i" -lt "$jobs" ]; do
		worker &
		pids="$pids $!"
		i=$((i + 1))
	done
	for p in $pids; do
		wait "$p" || true
	done
fi

# The summary, in list order.
echo
echo "== summary"
# shellcheck disable=SC2013 # ids are single words
for id in $(cut -f 1 "$work/check"); do
	if [ -f "$work/res.$id" ]; then
		cat "$work/res.$id"
	else
		printf '%s\tNOT RUN\t\t0\t\n' "$id"
	fi
done >"$work/results"
awk -F '\t' '
{ printf "%-4s %-9s %s\n", $1, $2, $3; c[$2]++; l[$2] = l[$2] " " $1 }
END {
	k = c["KILLED"] + 0; s = c["SURVIVED"] + 0
	print ""
	if (c["BUILT"]) printf "built: %d\n", c["BUILT"]
	printf "killed %d, survived %d, stillborn %d, stale %d\n", k, s,
	    c["STILLBORN"], c["STALE"]
	if (k + s > 0)
		printf "score: %d/%d = %.1f%%\n", k, k + s, 100 * k / (k + s)
	if (s) printf "survivors:%s\n", l["SURVIVED"]
	if (c["STILLBORN"]) printf "stillborn:%s\n", l["STILLBORN"]
	if (c["STALE"]) printf "stale:%s\n", l["STALE"]
}' "$work/results"
