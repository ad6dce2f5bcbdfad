#!/usr/bin/env bash
# What tests can leave on this machine: network namespaces, `pnt*` links, processes of a throwaway
# lab (their command lines name its pnt-XXXXXX- directory), Pulumi's plugin processes (the dynamic
# provider host, pulumi-resource-netns, the language hosts and the programs they run), and Pulumi workdirs in the
# checkout's .work/. `.ci/run` lists them before and after the tests and fails only on what is new,
# so what the machine had before is not blamed on the run.
#
#   bash test/harness/leftovers.sh > BEFORE          one line per thing, sorted
#   bash test/harness/leftovers.sh --since BEFORE    prints what is new since BEFORE; exit 1 if anything
set -euo pipefail
checkout=$(cd "$(dirname "$0")/../.." && pwd)

list() {
	# Only the name: `ip netns list` adds "(id: N)" once a peer namespace is assigned an id.
	ip netns list 2>/dev/null | awk '{print "netns " $1}'
	ip -o link show 2>/dev/null | awk -F': ' '$2 ~ /^pnt/ {sub(/@.*/, "", $2); print "link " $2}'
	pgrep -af 'pnt-[0-9a-f]{6}-|cmd/dynamic-provider|provider/native/main.js|pulumi-language-(nodejs|python|yaml)|@pulumi/pulumi/cmd/run' | sed 's/^/process /' || true
	for dir in "$checkout"/.work/*/; do [ ! -d "$dir" ] || { dir=${dir%/}; echo "workdir ${dir#"$checkout/"}"; }; done
}

case "${1:-}" in
"") list | LC_ALL=C sort ;;
--since)
	new=$(LC_ALL=C comm -13 <(LC_ALL=C sort "$2") <(list | LC_ALL=C sort))
	[ -z "$new" ] || { printf '%s\n' "$new"; exit 1; }
	;;
*) echo "usage: $0 [--since BEFORE]" >&2; exit 2 ;;
esac
