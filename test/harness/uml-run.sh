#!/usr/bin/env bash
# Runs ONE command inside a User-Mode Linux kernel (Debian's user-mode-linux: /usr/bin/linux, with
# its modules in /usr/lib/uml/modules), for proofs this machine's kernel cannot give: it was built
# without netem, and loads no modules. The UML kernel sees this machine's files as its root (hostfs),
# with its own tmpfs on /run and /tmp, and it gets NO network device: the only networks in it are the
# ones the command makes (throwaway hosts in network namespaces inside UML). The command runs as
# root in the current directory with this environment; its output is printed, its exit code returned.
#
#   bash test/harness/uml-run.sh COMMAND [ARG...]
#
# UML_RUN_TIMEOUT (seconds, default 1200) bounds the whole run; UML is killed on timeout, on a signal
# and on exit, so no UML process outlives this script.
set -euo pipefail

[ "$#" -gt 0 ] || { echo "usage: $0 COMMAND [ARG...]" >&2; exit 2; }
[ -x /usr/bin/linux ] || { echo "$0: /usr/bin/linux is missing (apt-get install user-mode-linux)" >&2; exit 1; }
[ -d /usr/lib/uml/modules ] || { echo "$0: /usr/lib/uml/modules is missing (user-mode-linux's modules)" >&2; exit 1; }

here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/uml-run-XXXXXX")
uml=""
sleeper=""
cleanup() {
	# UML's helper processes share its process group (setsid below): end them all, ours only.
	[ -n "$uml" ] && kill -KILL -- "-$uml" 2>/dev/null || true
	[ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# What the init script inside needs: this environment, the directory, the command.
export -p >"$dir/env"
printf '%s' "$PWD" >"$dir/cwd"
{
	printf 'cd -- %q\n' "$PWD"
	printf '%q ' "$@"
	echo
} >"$dir/command"

# No eth*/vec* arguments: UML has no network device. mem: node, jest and two sshd hosts fit in 2 GB.
setsid /usr/bin/linux mem=2G root=/dev/root rootfstype=hostfs rootflags=/ rw quiet \
	con=null ssl=null con0=null,fd:1 \
	init="$here/uml-init.sh" UML_RUN_DIR="$dir" \
	</dev/null >"$dir/console" 2>&1 &
uml=$!
# The time limit: whichever ends first, UML or this sleep (which holds none of our output pipes).
sleep "${UML_RUN_TIMEOUT:-1200}" </dev/null >/dev/null 2>&1 &
sleeper=$!
wait -n "$uml" "$sleeper" || true

cat "$dir/output" 2>/dev/null || true
if [ -s "$dir/init-error" ]; then
	# The cause, alone on the last line, for whoever reads this run's output.
	cat "$dir/init-error" >&2
	exit 1
fi
if [ ! -s "$dir/status" ]; then
	echo "$0: the command did not finish inside UML (timeout or kernel failure); UML console:" >&2
	tail -n 40 "$dir/console" >&2
	exit 1
fi
exit "$(cat "$dir/status")"
