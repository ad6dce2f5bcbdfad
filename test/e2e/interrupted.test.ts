/**
 * A `pulumi up` killed with SIGKILL half way, through the real CLI on a throwaway host: the processes it
 * started, the dynamic provider host with our SSH connections and the program, end by themselves within
 * a few seconds (Pulumi's Node language host asks the engine whether it lives every 5 minutes and exits
 * then; the test ends it sooner, with everything else it made). Then the next `pulumi up` finishes the
 * job: the creates the engine retries find their own objects (their owner tags) and take them over, a
 * refresh and a preview find nothing to change, and destroy leaves the host as it was, records included.
 * The file backend's lock of the killed run is the engine's and needs `pulumi cancel` first.
 */
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { PulumiWorkdir, REPO_ROOT, requirePulumiCli } from "../harness/pulumiWorkdir";
import { TestLab } from "../harness/throwawayHosts";
import { hostSnapshot } from "../harness/hostSnapshot";
import { changes, forProject, projectStack } from "../harness/e2e";
import { EVERY_KIND, toProgram } from "../harness/programs";

jest.setTimeout(10 * 60_000);

let lab: TestLab;

beforeAll(async () => {
  requirePulumiCli();
  lab = await TestLab.create(2);
});

afterAll(() => lab?.destroy());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Live processes whose working directory is under `dir`, with their command lines. */
function processesUnder(dir: string): { pid: number; command: string }[] {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .flatMap((entry) => {
      try {
        if (!readlinkSync(`/proc/${entry}/cwd`).startsWith(dir)) return [];
        const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
        if (/\) [ZX] /.test(stat)) return [];
        return [{ pid: Number(entry), command: readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").join(" ").trim() }];
      } catch {
        return [];
      }
    });
}

/** Starts `pulumi up` for the stack in `dir` as a child of this process, so that it can be killed for real. */
function pulumiUp(work: PulumiWorkdir, dir: string): ChildProcess {
  return spawn("pulumi", ["up", "--yes", "--skip-preview", "--non-interactive", "--stack", "e2e"], {
    cwd: dir,
    env: { ...process.env, ...work.env },
    stdio: "ignore",
  });
}

/** The program's size and when to kill: once this many namespaces exist (PNT_INTERRUPT_COUNT=60 PNT_INTERRUPT_AT=30, say). */
const COUNT = Number(process.env.PNT_INTERRUPT_COUNT ?? 40);
const KILL_AT = Number(process.env.PNT_INTERRUPT_AT ?? 5);

test(`SIGKILL of \`pulumi up\` of ${COUNT} namespaces once ${KILL_AT} exist: its provider and program are gone within 10 s; the next up converges, destroy leaves nothing`, async () => {
  const [host] = lab.hosts;
  const work = PulumiWorkdir.create("e2e-interrupted");
  try {
    const config = {
      host: { value: host.address },
      hostKey: { value: host.hostKey },
      sshKey: { value: lab.clientKey, secret: true },
      count: { value: String(COUNT) },
    };
    const before = hostSnapshot(host);
    const { stack, dir } = await projectStack(work, "scale", config, join(REPO_ROOT, "test", "e2e", "programs", "scale"));
    const up = pulumiUp(work, dir);
    const exited = new Promise((resolve) => up.once("exit", resolve));
    const namespaces = () => host.sh(["ip", "netns", "list"]).split("\n").filter(Boolean).length;
    for (let waited = 0; namespaces() < KILL_AT; waited += 100) {
      if (waited > 120_000 || up.exitCode !== null) throw new Error(`pulumi up made ${namespaces()} namespaces, exit ${up.exitCode}`);
      await sleep(100);
    }
    const plugins = processesUnder(work.dir).filter((p) => p.pid !== up.pid);
    expect(plugins.map((p) => p.command)).toEqual(expect.arrayContaining([expect.stringMatching(/cmd\/dynamic-provider/)]));
    up.kill("SIGKILL");
    await exited;
    const ours = () => processesUnder(work.dir).filter((p) => !/pulumi-language-nodejs/.test(p.command));
    for (let waited = 0; ours().length > 0 && waited < 10_000; waited += 200) await sleep(200);
    expect(ours()).toEqual([]);

    const cli = (...args: string[]) =>
      spawnSync("pulumi", [...args, "--stack", "e2e"], { cwd: dir, env: { ...process.env, ...work.env }, encoding: "utf8" });
    // The engine's own lock stays behind a SIGKILLed CLI; `cancel` removes it. Once in two full runs here
    // it exited 1 (its output was not kept then; it is now), and never alone: a second try after a pause.
    let cancelled = cli("cancel", "--yes");
    if (cancelled.status !== 0) {
      console.log(`pulumi cancel failed once (exit ${cancelled.status}): ${cancelled.stdout}${cancelled.stderr}`);
      await sleep(2000);
      cancelled = cli("cancel", "--yes");
    }
    expect({ status: cancelled.status, output: cancelled.status === 0 ? "" : cancelled.stdout + cancelled.stderr }).toEqual({
      status: 0,
      output: "",
    });
    const again = cli("up", "--yes", "--skip-preview", "--non-interactive");
    expect({ status: again.status, output: again.status === 0 ? "" : again.stdout + again.stderr }).toEqual({ status: 0, output: "" });
    expect(host.sh(["ip", "netns", "list"]).split("\n").filter(Boolean)).toHaveLength(COUNT);
    expect(changes((await stack.preview({ refresh: true })).changeSummary)).toEqual({});
    await stack.destroy();
    expect(hostSnapshot(host)).toEqual(before);
    // No holder or owner record is left (the lock file stays, as after any run).
    expect(host.sh(["find", "/run/pulumi-netns", "-type", "f", "!", "-name", "lock"], { allowFailure: true })).toBe("");
  } finally {
    for (const { pid } of processesUnder(work.dir)) process.kill(pid, "SIGKILL");
    work.remove();
  }
});

/** Kill points: every STRIDE-th command of a run (PNT_FAULT_STRIDE=1 for every one). */
const STRIDE = Number(process.env.PNT_FAULT_STRIDE ?? 7);

test(`the provider killed after every ${STRIDE}th remote command of an up and of a destroy: the next plain up (or destroy) converges`, async () => {
  const [host, peer] = lab.hosts;
  const work = PulumiWorkdir.create("e2e-faults");
  try {
    const before = hostSnapshot(host);
    const config = { host: { value: host.address }, hostKey: { value: host.hostKey }, sshKey: { value: lab.clientKey, secret: true } };
    const { stack, dir } = await projectStack(work, "edits", config, join(REPO_ROOT, "test", "e2e", "programs", "edits"));
    await stack.setConfig("program", {
      value: JSON.stringify(forProject(toProgram(EVERY_KIND, host.connection(), host.address, peer.address))),
    });
    const cli = (args: string[], kill = 0) =>
      spawnSync("pulumi", [...args, "--yes", "--skip-preview", "--non-interactive", "--stack", "e2e"], {
        cwd: dir,
        env: { ...process.env, ...work.env, ...(kill > 0 ? { PULUMI_NETNS_KILL_AFTER_COMMANDS: String(kill) } : {}) },
        encoding: "utf8",
      });
    const failure = (run: ReturnType<typeof cli>) => ({ status: run.status, output: run.status === 0 ? "" : run.stdout + run.stderr });
    const covered: string[] = [];
    for (const phase of ["up", "destroy"] as const) {
      for (let kill = 1; ; kill += STRIDE) {
        if (phase === "destroy") expect({ kill, ...failure(cli(["up"])) }).toEqual({ kill, status: 0, output: "" });
        const killed = cli([phase], kill);
        // A run that ends before its kill point ran every command: each one has been a kill point.
        if (killed.status === 0) break;
        expect({ phase, kill, output: killed.stdout + killed.stderr }).toEqual({
          phase,
          kill,
          output: expect.stringMatching(/error reading from server|transport is closing|connection refused|EOF/),
        });
        covered.push(`${phase}@${kill}`);
        expect({ phase, kill, ...failure(cli([phase])) }).toEqual({ phase, kill, status: 0, output: "" });
        if (phase === "up") {
          expect({ kill, refreshed: changes((await stack.preview({ refresh: true })).changeSummary) }).toEqual({ kill, refreshed: {} });
          expect({ kill, ...failure(cli(["destroy"])) }).toEqual({ kill, status: 0, output: "" });
        }
        expect({ phase, kill, host: hostSnapshot(host) }).toEqual({ phase, kill, host: before });
        expect(host.sh(["find", "/run/pulumi-netns", "-type", "f", "!", "-name", "lock"], { allowFailure: true })).toBe("");
      }
    }
    console.log(`kill points covered (phase@command): ${covered.join(" ")}`);
    expect(covered.filter((point) => point.startsWith("destroy")).length).toBeGreaterThan(0);
  } finally {
    await (async () => {
      for (const { pid } of processesUnder(work.dir)) process.kill(pid, "SIGKILL");
    })();
    work.remove();
  }
});
