#!/usr/bin/env bash
# The one list of Debian packages that `npm run demo`, `npm run bench`, `npm test` and .ci/run need:
# their throwaway hosts are network namespaces on this machine, each with its own sshd, and the labs
# built there are proven with ping, curl, a python3 web server, iptables and conntrack, and captured with
# tcpdump (`pulumi-netns capture` runs it on a lab's hosts). netem, which this machine's kernel may lack,
# is proven inside User-Mode Linux (test/harness/uml-run.sh).
#
#   bash scripts/prerequisites.sh [WHO]     WHO names the caller in messages ("npm run demo")
#
# With PREREQUISITES_INSTALLED=FILE, the packages it installed (none: an empty file) are written there.
#
# Each package is proven present by commands, looked up on PATH (a name) or as a file (a path), so a
# PATH without them counts as missing. Nothing missing: silent, exit 0. Missing, as root with apt-get:
# installs them, saying what and why in one line. Otherwise: one message that lists everything
# missing and the one command that installs it; exit 1.
set -euo pipefail

who="${1:-pulumi-netns}"

# "package: commands that prove it": every command the project runs from that package (checked against
# the code by test/unit/prerequisitesCover.test.ts; Debian's minimal base system needs no entry).
# python3 by path: the lab proof runs /usr/bin/python3, and a python3 shim on PATH (pyenv) is not Debian's.
# python3-venv has no command: its proof is the ensurepip module it adds (python3.X-venv), without which
# `python3 -m venv` fails; the Python language host runs that for a project with `virtualenv:`.
requirements=(
	"iproute2: ip ss bridge tc"
	"iptables: iptables iptables-save ip6tables ip6tables-save"
	"openssh-server: sshd"
	"openssh-client: ssh ssh-keygen"
	"iputils-ping: ping"
	"sudo: sudo"
	"curl: curl"
	"python3: /usr/bin/python3"
	"python3-venv: /usr/lib/python3.*/ensurepip"
	"procps: pgrep ps kill sysctl"
	"util-linux: unshare nsenter setsid setpriv"
	"openssl: openssl"
	"conntrack: conntrack"
	"graphviz: dot"
	"tcpdump: tcpdump"
	"user-mode-linux: /usr/bin/linux"
	"kmod: modprobe"
)

present() {
	if [[ "$1" == */* ]]; then [ -x "$1" ]; else command -v "$1" >/dev/null 2>&1; fi
}

# Sets missing_packages and missing_commands from the table above.
find_missing() {
	missing_packages=()
	missing_commands=()
	local entry package command
	for entry in "${requirements[@]}"; do
		package="${entry%%:*}"
		local absent=()
		for command in ${entry#*:}; do present "$command" || absent+=("$command"); done
		if [ "${#absent[@]}" -gt 0 ]; then
			missing_packages+=("$package")
			missing_commands+=("${absent[@]}")
		fi
	done
}

report() { [ -z "${PREREQUISITES_INSTALLED:-}" ] || printf '%s\n' "$*" >"$PREREQUISITES_INSTALLED"; }

find_missing
report
[ "${#missing_packages[@]}" -eq 0 ] && exit 0

install_command="apt-get install -y --no-install-recommends ${missing_packages[*]}"
what="${missing_commands[*]}"
if [ "$EUID" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "$who: missing ${what// /, } (the throwaway test hosts need them). Install them as root on Debian with:" >&2
	echo "  $install_command" >&2
	exit 1
fi

echo "$who: installing ${missing_packages[*]} with apt-get, for ${what// /, } (the throwaway test hosts need them)" >&2
# Another apt run (a second checkout, unattended upgrades) holds the lock for a while: wait for it.
apt=(apt-get -qq -o DPkg::Lock::Timeout=600)
if ! output=$(DEBIAN_FRONTEND=noninteractive "${apt[@]}" update 2>&1 &&
	DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends "${missing_packages[@]}" 2>&1); then
	printf '%s\n' "$output" >&2
	echo "$who: apt-get could not install ${missing_packages[*]} (see above)" >&2
	exit 1
fi

report "${missing_packages[@]}"
find_missing
if [ "${#missing_packages[@]}" -gt 0 ]; then
	echo "$who: still missing after apt-get: ${missing_commands[*]} (not on PATH=$PATH?)" >&2
	exit 1
fi
