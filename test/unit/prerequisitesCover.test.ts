/**
 * The guard against a missing install step: every external command the code runs (the provider's remote
 * commands and scripts, the harness, the tests, the UML scripts, the demo, .ci/run) must come from a
 * package in scripts/prerequisites.sh's table, from Debian's minimal base system, or from what the
 * machine has before the project's scripts run (Node.js, Go) and what setup-pulumi.sh builds.
 */
import { readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { REPO_ROOT } from "../harness/pulumiWorkdir";
import { CommandUse, commandsUsed, shellCommands } from "../harness/commandsUsed";

/**
 * Commands of the packages debootstrap's minbase variant installs (Essential and Priority required):
 * coreutils, bash, dash, grep, sed, findutils, util-linux, bsdutils, mount, mawk, gzip, apt, debianutils.
 */
const DEBIAN_BASE = new Set(
  (
    "sh bash cat chmod comm cp date dirname echo env false head id ln ls mkdir mktemp mv nproc printf pwd readlink rm " +
    "sleep sort stat sync tail tee timeout touch tr true uname wc grep sed find xargs flock mountpoint setsid setpriv " +
    "unshare nsenter script mount umount awk zcat gzip apt-get which"
  ).split(" "),
);

/** Not Debian's: the machine's Node.js and Go, and the Pulumi CLI that scripts/setup-pulumi.sh builds with Go. */
const PROVIDED = new Set([
  "node",
  "npm",
  "npx",
  "go",
  "pulumi",
  "pulumi-language-nodejs",
  "pulumi-language-python",
  "pulumi-language-yaml",
  "pulumi-resource-pulumi-nodejs",
  "pulumi-netns-gen-sdk",
]);

/** The table of scripts/prerequisites.sh: command name (of a path, its last part) → package. */
function prerequisitesTable(script: string): Map<string, string> {
  const table = new Map<string, string>();
  for (const [, pkg, commands] of script.matchAll(/^\t"([a-z0-9.+-]+): ([^"]+)"$/gm)) {
    for (const command of commands.split(" ")) table.set(basename(command), pkg);
  }
  return table;
}

/** Uses of commands that neither the table nor the base system nor the machine covers, one line each. */
function uncovered(uses: CommandUse[], table: Map<string, string>): string[] {
  const covered = (command: string) => table.has(basename(command)) || DEBIAN_BASE.has(basename(command)) || PROVIDED.has(command);
  const lines = uses.filter((use) => !covered(use.command)).map((use) => `${use.command} (run in ${use.file})`);
  return [...new Set(lines)].sort();
}

const script = readFileSync(join(REPO_ROOT, "scripts", "prerequisites.sh"), "utf8");
const uses = commandsUsed(REPO_ROOT);

test("every command the code runs is installed by scripts/prerequisites.sh or is Debian's base system's", () => {
  expect(uncovered(uses, prerequisitesTable(script))).toEqual([]);
});

test("the guard finds the commands of the provider, the harness, the UML scripts and the demo", () => {
  const files = (command: string) => uses.filter((use) => use.command === command).map((use) => use.file);
  expect(files("ip")).toContain("provider/iproute.ts");
  expect(files("flock")).toContain("provider/holders.ts");
  expect(files("iptables")).toContain("provider/iptables.ts");
  expect(files("ip6tables")).toContain("provider/iptables.ts");
  expect(files("unshare")).toContain("test/harness/throwawayHosts.ts");
  expect(files("/usr/sbin/sshd")).toContain("test/harness/throwawayHosts.ts");
  expect(files("modprobe")).toContain("test/harness/uml-init.sh");
  expect(files("/usr/bin/linux")).toContain("test/harness/uml-run.sh");
  expect(files("curl")).toContain("test/harness/labProof.ts");
  expect(files("pulumi")).toContain("tools/demo.ts");
});

test("a table without one of its packages fails the guard, naming the command and the file", () => {
  const withoutKmod = script.replace(/^\t"kmod: .*"\n/m, "");
  expect(withoutKmod).not.toBe(script);
  expect(uncovered(uses, prerequisitesTable(withoutKmod))).toEqual(["modprobe (run in test/harness/uml-init.sh)"]);
  const withoutConntrack = script.replace(/^\t"conntrack: .*"\n/m, "");
  expect(uncovered(uses, prerequisitesTable(withoutConntrack))).toEqual(
    expect.arrayContaining(["conntrack (run in provider/iptables.ts)", "conntrack (run in provider/kinds/portForward.ts)"]),
  );
});

test("shell scripts: commands in every command position, not their arguments, variables, functions or builtins", () => {
  const text = [
    "set -e; x=1 FOO=bar grep -q a b && sed s/a/b/ c || { awk 1; }",
    'f() { tail -n1; }; f; "$program" "$@"; $cmd arg',
    'out=$(stat -c %i /x | sort) ; echo "$(nproc)" `uname`',
    'for w in ip tc; do ping -c1 "$w"; done',
    'case "$1" in run) mkdir -p x ;; *) rm -f y ;; esac',
    "if command -v dot >/dev/null 2>&1; then exec sshd -D; fi",
    "sh -c 'modprobe -a veth; flock 9' 9>/run/lock",
    "cat >f <<'EOF'\nexec node x.js\nEOF\ntouch done",
  ].join("\n");
  expect(shellCommands(text).sort()).toEqual(
    [
      "grep",
      "sed",
      "awk",
      "tail",
      "stat",
      "sort",
      "nproc",
      "uname",
      "ping",
      "mkdir",
      "rm",
      "sshd",
      "sh",
      "cat",
      "touch",
      "node",
      "modprobe",
      "flock",
    ].sort(),
  );
});
