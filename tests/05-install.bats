#!/usr/bin/env bats
# tests/05-install.bats -- make install/uninstall honour PREFIX and DESTDIR.

load helper

@test "make install puts programs, pages and the schema under DESTDIR/PREFIX; uninstall removes them" {
	d=$BATS_TEST_TMPDIR/dest
	run -0 make -s -C "$PHN_REPO" install DESTDIR="$d" PREFIX=/opt/phn
	# every program of cmd/ (the phn script and each phn-*.c), with its page
	n=0
	for c in "$PHN_REPO"/cmd/phn "$PHN_REPO"/cmd/phn-*.c; do
		p=$(basename "$c" .c)
		[ -x "$d/opt/phn/bin/$p" ] || fail "$p not installed"
		[ -f "$d/opt/phn/share/man/man1/$p.1" ] || fail "$p.1 not installed"
		n=$((n + 1))
	done
	[ "$n" -ge 16 ]
	[ -f "$d/opt/phn/share/man/man5/phn.5" ]
	[ -f "$d/opt/phn/share/man/man7/phn.7" ]
	cmp "$d/opt/phn/share/phn/run_report.schema.json" \
	    "$PHN_REPO/run_report.schema.json"
	cmp "$d/opt/phn/share/phn/dashboard.html" \
	    "$PHN_REPO/share/dashboard.html"
	# An installed phn-init finds the installed schema through PHN_DATADIR.
	cd "$BATS_TEST_TMPDIR"
	PHN_DATADIR=$d/opt/phn/share/phn run -0 "$d/opt/phn/bin/phn-init" --root store
	[ -f store/runs/_system/run_report.schema.json ]
	run -0 make -s -C "$PHN_REPO" uninstall DESTDIR="$d" PREFIX=/opt/phn
	[ -z "$(find "$d" -type f)" ]
}
