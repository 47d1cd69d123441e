#!/bin/sh
# .ci/codex-path.sh -- print the absolute path of the Codex CLI that
# .ci/deps.sh cached (same PHN_CODEX_CACHE / XDG_CACHE_HOME rules); exit 1,
# printing nothing, when it is not installed.
#
# Which binary: the NATIVE one (node_modules/@openai/codex-linux-*/vendor/
# <triple>/bin/codex), when present, rather than the npm launcher
# node_modules/.bin/codex.  Under Node 20 the launcher has no process.execve,
# so it stays alive as a `node` parent and spawns the native binary as a
# child: a SIGKILL to the launcher orphans that child, which keeps running,
# and every run pays ~80 ms of Node start-up.  The native binary is a static
# musl executable that behaves the same (it finds its bundled bwrap/rg next to
# itself); the only things the launcher adds are CODEX_MANAGED_BY_NPM and
# CODEX_MANAGED_PACKAGE_ROOT, which only shape "how to update" hints.  The
# launcher is the fallback if the platform package's layout ever changes.
dir=${PHN_CODEX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/phn/codex-0.171.0}
for c in "$dir"/node_modules/@openai/codex-linux-*/vendor/*/bin/codex \
         "$dir"/node_modules/.bin/codex; do
    if [ -f "$c" ] && [ -x "$c" ]; then
        case $c in
            /*) printf '%s\n' "$c" ;;
            *) printf '%s/%s\n' "$(pwd)" "$c" ;;
        esac
        exit 0
    fi
done
exit 1
