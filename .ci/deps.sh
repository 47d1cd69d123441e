#!/bin/sh
# .ci/deps.sh -- install what ParallelHassnes needs to build and test, and
# nothing else.  Idempotent; run as root by `make deps` and by CI on a fresh
# Debian 12 machine (no TTY, no stdin).
#
#   PHN_DEPS_SKIP_APT=1     skip the Debian packages
#   PHN_DEPS_SKIP_CODEX=1   skip the npm install of the real Codex CLI
#   PHN_CODEX_CACHE=DIR     where codex goes (default
#                           ${XDG_CACHE_HOME:-$HOME/.cache}/phn/codex-0.171.0)
#
# Exit status: non-zero only when a Debian package cannot be installed.  A
# missing node/npm or a failed codex install is a warning (the codex e2e tests
# then skip with a message), never an error.
set -u

CODEX_VERSION=0.171.0
CODEX_PKG="@openai/codex@$CODEX_VERSION"

# Keep this list in sync with what the build and tests use.  slurm-wlm
# and munge: tests/90-slurm.bats runs its own one-node cluster
# (tests/slurm-up.sh); their packages must not start system daemons.  Never add
# npm/nodejs here: Debian's nodejs conflicts with the machine's own Node.js.
APT_PKGS="build-essential clang pkg-config libjson-c-dev libmd-dev
libmicrohttpd-dev jq bats bats-assert bats-support mandoc shellcheck git
python3 parallel valgrind procps curl strace libclang-rt-14-dev chromium
slurm-wlm munge"

CI_DIR=$(cd "$(dirname "$0")" && pwd)

say() { printf 'deps: %s\n' "$*"; }
warn() { printf 'deps: WARNING: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        warn "not root and no sudo: cannot run: $*"
        return 1
    fi
}

# ---------------------------------------------------------------- Debian ---
install_apt() {
    missing=""
    for p in $APT_PKGS; do
        st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) || st=""
        case $st in
            *" ok installed") ;;
            *) missing="$missing $p" ;;
        esac
    done
    [ -n "$missing" ] || return 0

    for p in $missing; do say "installing Debian package $p"; done
    # No daemon of ours may be started by a postinst (munge, slurmctld,
    # slurmd): where the machine has no policy-rc.d, a temporary one
    # denies it, as Debian's invoke-rc.d allows.
    rcd=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        if as_root sh -c 'printf "#!/bin/sh\nexit 101\n" >/usr/sbin/policy-rc.d &&
                chmod 0755 /usr/sbin/policy-rc.d'; then
            rcd=/usr/sbin/policy-rc.d
        fi
    fi
    # Wait for the dpkg lock (another install may be running) instead of
    # failing at once.
    if ! as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get -o DPkg::Lock::Timeout=300 -qq update </dev/null >/dev/null; then
        warn "apt-get update failed"
        [ -z "$rcd" ] || as_root rm -f "$rcd"
        return 1
    fi
    # shellcheck disable=SC2086 # word splitting of the package list is wanted
    if ! as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get -o DPkg::Lock::Timeout=300 -qq install -y \
            --no-install-recommends $missing </dev/null >/dev/null; then
        warn "apt-get install failed for:$missing"
        [ -z "$rcd" ] || as_root rm -f "$rcd"
        return 1
    fi
    [ -z "$rcd" ] || as_root rm -f "$rcd"
    return 0
}

# ----------------------------------------------------------------- Codex ---
# Prints the version line of the codex cached in $1, or nothing.  Asks the
# binary .ci/codex-path.sh picks (the native one: works without node), and
# requires the npm launcher node_modules/.bin/codex to be there too.  Even
# --version writes under $CODEX_HOME, so give it a throw-away one.
codex_version() {
    [ -e "$1/node_modules/.bin/codex" ] || return 0
    bin=$(PHN_CODEX_CACHE=$1 sh "$CI_DIR/codex-path.sh") || return 0
    ch=$(mktemp -d 2>/dev/null) || return 0
    CODEX_HOME=$ch "$bin" --version </dev/null 2>/dev/null | head -n 1
    rm -rf "$ch"
}

install_codex() {
    dir=${PHN_CODEX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/phn/codex-$CODEX_VERSION}
    if [ "$(codex_version "$dir")" = "codex-cli $CODEX_VERSION" ]; then
        return 0
    fi
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        warn "node/npm not found: not installing $CODEX_PKG; the codex e2e tests will be skipped"
        return 0
    fi
    say "installing $CODEX_PKG into $dir"
    log=$(mktemp 2>/dev/null || echo /tmp/phn-deps-npm.$$.log)
    if mkdir -p "$dir" &&
       npm install --prefix "$dir" --no-audit --no-fund --no-progress \
           --loglevel=error "$CODEX_PKG" </dev/null >"$log" 2>&1 &&
       [ "$(codex_version "$dir")" = "codex-cli $CODEX_VERSION" ]; then
        rm -f "$log"
        return 0
    fi
    warn "could not install $CODEX_PKG into $dir; the codex e2e tests will be skipped"
    sed 's/^/deps:   npm: /' "$log" | tail -n 20 >&2
    rm -f "$log"
    return 0
}

rc=0
if [ "${PHN_DEPS_SKIP_APT:-0}" != 1 ]; then
    install_apt || rc=1
fi
if [ "${PHN_DEPS_SKIP_CODEX:-0}" != 1 ]; then
    install_codex
fi
exit "$rc"
