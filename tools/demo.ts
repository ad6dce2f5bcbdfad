/**
 * `npm run demo`: the whole user journey on a throwaway host made on this machine. `pulumi up` builds
 * examples/bridge-lab, real traffic proves it works, a drift made behind Pulumi's back is caught by
 * `pulumi refresh` and repaired by `pulumi up`, and `pulumi destroy` leaves the host as it was.
 * Pulumi's own progress display is shown as it runs.
 *
 * `--keep` stops before the destroy and leaves the lab and its throwaway hosts running, written down
 * in a state file; `--destroy` finds them there and removes all of it.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { shellQuote } from "../provider/shell";
import { proveBridgeLab } from "../test/harness/labProof";
import { ensurePulumiCli, PulumiWorkdir } from "../test/harness/pulumiWorkdir";
import { hostSnapshot } from "../test/harness/hostSnapshot";
import { KeptLab, keptHostRunning, TestLab } from "../test/harness/throwawayHosts";

/** A kept demo: the lab's hosts, and the Pulumi project and state that built the lab on them. */
interface KeptDemo {
  lab: KeptLab;
  workdir: string;
  project: string;
  pulumiBin: string;
}

const KEPT_STATE = join(process.env.PULUMI_NETNS_CACHE ?? join(homedir(), ".cache", "pulumi-netns"), "demo", "kept.json");

const say = (text: string) => process.stdout.write(`\n\x1b[1m== ${text}\x1b[0m\n`);

function fail(message: string): never {
  process.stderr.write(`demo: ${message}\n`);
  process.exit(1);
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

/** The environment that lets a user run `pulumi` on the kept stack by hand. */
function pulumiEnvironment(kept: KeptDemo): string {
  const work = PulumiWorkdir.open(kept.workdir);
  const variables = Object.entries(work.env).map(([name, value]) => `${name}=${shellQuote(value)}`);
  return `cd ${shellQuote(kept.project)} && export PATH=${shellQuote(kept.pulumiBin)}:"$PATH" ${variables.join(" ")}`;
}

function printKept(kept: KeptDemo, target: { pid: number; address: string }): void {
  say("The lab stays up (--keep)");
  const lines = [
    `The throwaway host ${target.address} is a network namespace with its own sshd, running detached (pid ${target.pid}).`,
    "A shell inside the lab's namespace red on it (blue likewise):",
    `  nsenter -t ${target.pid} -n -m ip netns exec red bash`,
    "Pulumi on this stack (pulumi stack, pulumi refresh, pulumi destroy --yes removes only the lab):",
    `  ${pulumiEnvironment(kept)}`,
    "Remove everything afterwards, throwaway hosts included:",
    "  npm run demo -- --destroy",
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

async function runDemo(keep: boolean): Promise<void> {
  if (keep && existsSync(KEPT_STATE)) fail(`a kept lab is still up (${KEPT_STATE}): npm run demo -- --destroy first`);
  const pulumiBin = ensurePulumiCli();
  say("Making a throwaway target host and a client host (network namespaces with their own sshd)");
  const lab = await TestLab.create(2, { detached: keep });
  const work = PulumiWorkdir.create("demo");
  let kept = false;
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

    if (keep) {
      const state: KeptDemo = { lab: lab.keep(), workdir: work.dir, project, pulumiBin };
      mkdirSync(dirname(KEPT_STATE), { recursive: true });
      writeFileSync(KEPT_STATE, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
      kept = true;
      printKept(state, target);
      return;
    }

    say("pulumi destroy");
    pulumi(project, work, ["destroy", "--yes"]);
    const clean = isDeepStrictEqual(hostSnapshot(target), before);
    process.stdout.write(
      clean
        ? "  ✔ the host is exactly as before (namespaces, links, addresses, rules, forwarding)\n"
        : "  ✘ the host differs from before\n",
    );
    if (!clean) process.exitCode = 1;
  } finally {
    if (!kept) {
      say("Removing the throwaway hosts");
      lab.destroy();
      work.remove();
    }
  }
}

function destroyKept(): void {
  if (!existsSync(KEPT_STATE)) {
    process.stdout.write(`demo: no kept lab to destroy (${KEPT_STATE} does not exist)\n`);
    return;
  }
  const kept: KeptDemo = JSON.parse(readFileSync(KEPT_STATE, "utf8"));
  const work = PulumiWorkdir.open(kept.workdir);
  if (kept.lab.hosts.every(keptHostRunning) && existsSync(kept.project)) {
    say("pulumi destroy: the lab");
    ensurePulumiCli();
    try {
      pulumi(kept.project, work, ["destroy", "--yes"]);
    } catch (err) {
      // The hosts go next anyway, and everything Pulumi made lives inside them.
      process.stderr.write(`demo: ${err instanceof Error ? err.message : err}; removing the hosts all the same\n`);
    }
  }
  say("Removing the throwaway hosts");
  TestLab.destroyKept(kept.lab);
  work.remove();
  rmSync(dirname(KEPT_STATE), { recursive: true, force: true });
  process.stdout.write(`  ✔ removed the hosts, bridge ${kept.lab.bridge}, ${kept.lab.dir} and ${kept.workdir}\n`);
}

async function main(mode: string): Promise<void> {
  if (!["", "--keep", "--destroy"].includes(mode)) fail("usage: npm run demo [-- --keep | -- --destroy]");
  if (process.platform !== "linux") fail("needs Linux (network namespaces).");
  if (process.getuid?.() !== 0) fail("needs root, to make a throwaway host in a network namespace: sudo npm run demo");
  // An interrupted demo still removes its hosts (exit hooks do not run on a signal's default action).
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(130));
  if (mode === "--destroy") destroyKept();
  else await runDemo(mode === "--keep");
}

main(process.argv.slice(2).join(" ")).catch((err) => {
  process.stderr.write(`demo: ${err instanceof Error ? err.message : err}\n`);
  process.exit(1);
});
