#!/usr/bin/env bats
# tests/07-conventions.bats -- what every program shares (phn(7),
# Conventions): --help on standard output with exit 0, usage errors on
# standard error with exit 100, one meaning per option letter in every
# program, a usage that names the options of the SYNOPSIS, and exit
# statuses that are named constants in cmd/.

bats_require_minimum_version 1.5.0

load helper

setup() {
	phn_setup
}

# The C programs: one per cmd/*.c.
programs() {
	local f
	for f in "$PHN_REPO"/cmd/phn-*.c; do
		f=${f##*/}
		printf '%s\n' "${f%.c}"
	done
}

# The option items (".It Fl ...") of the mdoc text on stdin, one per line:
# LETTER|ARG|LONGS, where LETTER is "-" for a long option alone, ARG is 1
# when the option takes a value, and LONGS its long names.
items() {
	awk '/^\.It Fl / {
		letter = "-"; longs = ""
		for (i = 3; i <= NF; i++)
			if ($i == "Fl" && $(i + 1) == "Fl") {
				longs = longs " --" $(i + 2)
				i += 2
			}
		if ($3 != "Fl")
			letter = $3
		printf "%s|%d|%s\n", letter, / Ar /, substr(longs, 2)
	}'
}

# The options an mdoc SYNOPSIS (stdin) or a usage text names, one a line,
# sorted; a cluster such as -0J counts as -0 and -J.
synopsis_opts() {
	sed 's/^\.//; s/Fl Fl \([^ ]*\)/--\1/g; s/Fl \([^ ]*\)/-\1/g'
}
usage_opts() {
	grep -oE '(^|[][ |])--?[A-Za-z0-9][-A-Za-z0-9]*' |
	    sed 's/^[][ |]//' |
	    awk '/^--/ { print; next }
		{ for (i = 2; i <= length($0); i++) print "-" substr($0, i, 1) }' |
	    sort -u
}
synopsis() {
	awk '/^\.Sh SYNOPSIS/ { p = 1; next } /^\.Sh / { p = 0 } p' "$1"
}
description() {
	awk '/^\.Sh DESCRIPTION/ { p = 1; next } /^\.Sh / { p = 0 } p' "$1"
}
conventions() {
	awk '/^\.Ss Conventions/ { p = 1; next } /^\.S[hs] / { p = 0 } p' \
	    "$PHN_REPO/man/phn.7"
}

@test "--help and -h print the usage on standard output and exit 0, for every program" {
	local p n=0
	for p in $(programs); do
		run -0 --separate-stderr "$p" --help
		assert_output --regexp "^usage: $p "
		[ -z "$stderr" ]
		run -0 --separate-stderr "$p" -h
		assert_output --regexp "^usage: $p "
		[ -z "$stderr" ]
		n=$((n + 1))
	done
	[ "$n" -ge 15 ]
}

@test "a usage error prints the usage on standard error and exits 100, for every program" {
	local p
	for p in $(programs); do
		run -100 --separate-stderr "$p" --no-such-option
		[ -z "$output" ]
		assert_stderr_line "$p: unrecognized option '--no-such-option'"
		assert_stderr_line --partial "usage: $p "
		run -100 --separate-stderr "$p" -%
		[ -z "$output" ]
		assert_stderr_line "$p: invalid option -- '%'"
	done
}

@test "the phn front end: --help, -h, help and a verb's --help on standard output, exit 0" {
	run -0 --separate-stderr phn --help
	assert_output --regexp '^usage: phn '
	[ -z "$stderr" ]
	run -0 --separate-stderr phn -h
	assert_output --regexp '^usage: phn '
	run -0 --separate-stderr phn help
	assert_output --regexp '^usage: phn '
	[ -z "$stderr" ]
	run -0 --separate-stderr phn tick --help
	assert_output --regexp '^usage: phn tick '
	[ -z "$stderr" ]
	run -0 --separate-stderr phn serve -h
	assert_output --regexp '^usage: phn tick '
	run -0 --separate-stderr phn claim --help
	assert_output --regexp '^usage: phn-claim '
	run -0 --separate-stderr phn scoreboard -h
	assert_output --regexp '^usage: phn-score '
	run -100 --separate-stderr phn
	[ -z "$output" ]
	assert_stderr_line --partial 'usage: phn '
	run -100 --separate-stderr phn --no-such-option
	[ -z "$output" ]
	run -100 --separate-stderr phn tick --no-such-option
	[ -z "$output" ]
	assert_stderr_line --partial 'usage: phn tick '
}

@test "each program's usage names exactly the options of its SYNOPSIS" {
	local p u s
	for p in $(programs); do
		u=$("$p" --help | usage_opts)
		s=$(synopsis "$PHN_REPO/man/$p.1" | synopsis_opts | usage_opts)
		[ -n "$u" ]
		assert_equal "$p: $u" "$p: $s"
	done
}

@test "each program accepts every option its page lists, letter and long name, and no other letter" {
	local p letter arg longs l v c st bad=
	for p in $(programs); do
		while IFS='|' read -r letter arg longs; do
			v=()
			[ "$arg" = 1 ] && v=(1)
			if [ "$letter" != - ]; then
				run -0 "$p" "-$letter" "${v[@]}" --help </dev/null
				assert_output --regexp "^usage: $p "
			fi
			for l in $longs; do
				run -0 "$p" "$l" "${v[@]}" --help </dev/null
				assert_output --regexp "^usage: $p "
			done
		done < <(description "$PHN_REPO/man/$p.1" | items)
		# A letter the page does not list is a usage error.
		letters=" $(description "$PHN_REPO/man/$p.1" | items | cut -d'|' -f1 | tr '\n' ' ')"
		for c in {0..9} {A..Z} {a..z}; do
			case $letters in *" $c "*) continue ;; esac
			st=0
			"$p" "-$c" 1 --help </dev/null >/dev/null 2>&1 || st=$?
			[ "$st" -eq 100 ] || bad="$bad $p:-$c($st)"
		done
	done
	[ -z "$bad" ] || fail "letters accepted but not documented:$bad"
}

@test "one letter, one meaning: every page's letters are those of phn(7), Conventions" {
	local table f letter arg longs l want bad=
	table=$(conventions | items)
	[ "$(printf '%s\n' "$table" | wc -l)" -ge 30 ]
	# No long option under two letters.
	run -0 bash -c 'cut -d"|" -f3 | tr " " "\n" | sort | uniq -d' <<<"$table"
	[ -z "$output" ]
	for f in "$PHN_REPO"/man/phn*.1; do
		while IFS='|' read -r letter arg longs; do
			[ "$letter" != - ] || continue
			want=$(printf '%s\n' "$table" | awk -F'|' -v c="$letter" \
			    '$1 == c { print $3 }')
			[ -n "$want" ] || bad="$bad ${f##*/}:-$letter(not in phn.7)"
			for l in $longs; do
				case " $want " in
				*" $l "*) ;;
				*) bad="$bad ${f##*/}:-$letter=$l" ;;
				esac
			done
		done < <(description "$f" | items)
	done
	[ -z "$bad" ] || fail "letters that differ from phn(7):$bad"
}

@test "exit statuses in cmd/ are named constants" {
	run -1 grep -nE '(exit|phn_die)\([0-9]|phn_usage\([^,]*, [0-9]' \
	    "$PHN_REPO"/cmd/*.c
	run -0 awk '/^main\(/ { m = 1 } m && /return [0-9]+;/ {
		print FILENAME ":" FNR ": " $0 } /^}/ { m = 0 }' "$PHN_REPO"/cmd/*.c
	[ -z "$output" ]
	run -1 grep -nE '(exit|return) [0-9]' "$PHN_REPO/cmd/phn"
}

@test "a current directory that is gone is a temporary failure (111), named" {
	mkdir gone
	cd gone
	rmdir "$T/gone"
	run -111 --separate-stderr phn-score
	assert_stderr_line "phn-score: unable to get the current directory: No such file or directory"
}
