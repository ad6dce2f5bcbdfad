/**
 * `npm run demo`: the whole user journey on a throwaway host made on this machine. `pulumi up` builds
 * examples/bridge-lab, real traffic proves it works, a drift made behind Pulumi's back is caught by
 * `pulumi refresh` and repaired by `pulumi up`, and `pulumi destroy` leaves the host as it was.
 * Pulumi's own progress display is shown as it runs.
 */
import { spawnSync } from "node:child_process";
import { isDeepStrictEqual } from "node:util";
import { proveBridgeLab } from "./labProof";
import { PulumiWorkdir, REPO_ROOT } from "./pulumiWorkdir";
import { hostSnapshot } from "./hostSnapshot";
import { TestLab } from "./throwawayHosts";

const say = (text: string) => process.stdout.write(`\n\x1b[1m== ${text}\x1b[0m\n`);

function fail(message: string): never {
  process.stderr.write(`demo: ${message}\n`);
  process.exit(1);
}

function has(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

function checkPrerequisites(): void {
  if (process.platform !== "linux") fail("needs Linux (network namespaces).");
  if (process.getuid?.() !== 0) fail("needs root, to make a throwaway host in a network namespace: sudo npm run demo");
  const tools: [string, string][] = [
    ["ip", "iproute2"],
    ["iptables", "iptables"],
    ["/usr/sbin/sshd", "openssh-server"],
    ["ssh-keygen", "openssh-client"],
    ["curl", "curl"],
    ["/usr/bin/python3", "python3"],
    ["unshare", "util-linux"],
  ];
  for (const [tool, pkg] of tools) if (!has(tool)) fail(`needs ${tool}: apt-get install ${pkg}`);
  if (!has("pulumi")) {
    process.stdout.write("The Pulumi CLI is not on PATH; setting it up with scripts/setup-pulumi.sh (a first build takes minutes)…\n");
    const setup = spawnSync("bash", [`${REPO_ROOT}/scripts/setup-pulumi.sh`], { stdio: ["ignore", "pipe", "inherit"], encoding: "utf8" });
    const bin = setup.stdout.trim().split("\n").pop();
    if (setup.status !== 0 || !bin) fail("the Pulumi CLI is missing and scripts/setup-pulumi.sh could not provide it (see above).");
    process.env.PATH = `${bin}:${process.env.PATH}`;
  }
}

function pulumi(project: string, work: PulumiWorkdir, args: string[], input?: string): void {
  const result = spawnSync("pulumi", [...args, "--non-interactive"], {
    cwd: project,
    env: { ...process.env, ...work.env },
    stdio: [input === undefined ? "ignore" : "pipe", "inherit", "inherit"],
    input,
  });
  if (result.status !== 0) throw new Error(`pulumi ${args.join(" ")} failed`);
}

async function main(): Promise<void> {
  checkPrerequisites();
  say("Making a throwaway target host and a client host (network namespaces with their own sshd)");
  const lab = await TestLab.create(2);
  const work = PulumiWorkdir.create("demo");
  try {
    const [target, client] = lab.hosts;
    process.stdout.write(`target ${target.address} (host key ${target.hostKey.slice(0, 40)}…), client ${client.address}\n`);
    const project = work.copyProject("bridge-lab");
    pulumi(project, work, ["stack", "init", "demo"]);
    pulumi(project, work, ["config", "set", "host", target.address]);
    pulumi(project, work, ["config", "set", "hostKey", target.hostKey]);
    pulumi(project, work, ["config", "set", "--secret", "sshKey"], lab.clientKey);
    const before = hostSnapshot(target);

    say("pulumi up: build examples/bridge-lab");
    pulumi(project, work, ["up", "--yes"]);

    say("Proof that the lab works");
    const ips = { red: "192.168.15.1", blue: "192.168.15.2", gateway: "192.168.15.5" };
    for (const line of await proveBridgeLab(target, client, ips)) process.stdout.write(`  ✔ ${line}\n`);

    say("Drift behind Pulumi's back: ip -n red link set veth-red down");
    target.sh(["ip", "-n", "red", "link", "set", "veth-red", "down"]);
    say("pulumi refresh: catches it");
    pulumi(project, work, ["refresh", "--yes", "--diff"]);
    say("pulumi up: repairs it");
    pulumi(project, work, ["up", "--yes"]);
    process.stdout.write(`  ✔ ${target.sh(["ip", "-n", "red", "-br", "link", "show", "veth-red"]).trim()}\n`);

    say("pulumi destroy");
    pulumi(project, work, ["destroy", "--yes"]);
    const clean = isDeepStrictEqual(hostSnapshot(target), before);
    process.stdout.write(clean ? "  ✔ the host is exactly as before (namespaces, links, addresses, rules, forwarding)\n" : "  ✘ the host differs from before\n");
    if (!clean) process.exitCode = 1;
  } finally {
    say("Removing the throwaway hosts");
    lab.destroy();
    work.remove();
  }
}

main().catch((err) => {
  process.stderr.write(`demo: ${err instanceof Error ? err.message : err}\n`);
  process.exit(1);
});
