/**
 * `npm run bench [-- N]` (root, Linux): measured on a throwaway host made on this machine.
 *  1. Cost of one command through the shared connection pool, one at a time and 64 at a time.
 *  2. Cost of one resource through the provider (Namespace create + delete).
 *  3. `pulumi up`, `refresh`, `preview` (no changes) and `destroy` of N namespaces on one bridge (3N + 1
 *     resources, test/e2e/programs/scale) with the real CLI and default settings: the engine's floor (the
 *     same program and graph with do-nothing dynamic resources) and pulumi-netns, in one run.
 *     Each operation runs for both variants back to back; refresh and preview several times (REPEATS),
 *     counting with their median. Also the peak RSS of the dynamic provider host and the state's size per
 *     resource.
 * Prints tables and, last, one line of JSON. A benchmark, not a test: nothing is asserted.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { LocalWorkspace, Stack } from "@pulumi/pulumi/automation";
import { connection as connectionSchema } from "../provider/connection";
import { closeAllHosts, provider } from "../provider";
import { hostFor } from "../provider/ssh/pool";
import { ensurePulumiCli, PulumiWorkdir, REPO_ROOT } from "./pulumiWorkdir";
import { TestLab } from "./throwawayHosts";

const COMMANDS = 200;

/** How many times each operation runs (for both variants in turn); up and destroy take a minute each at N=200. */
const REPEATS = { up: 1, refresh: 5, preview: 3, destroy: 1 };
type Operation = keyof typeof REPEATS;
const OPERATIONS = Object.keys(REPEATS) as Operation[];

interface Run {
  variant: string;
  work: PulumiWorkdir;
  stack: Stack;
  memory: { stop(): number };
  samples: Record<Operation, number[]>;
}

function median(samples: number[]): number {
  return [...samples].sort((a, b) => a - b)[Math.floor(samples.length / 2)];
}

async function timed<T>(work: () => Promise<T>): Promise<number> {
  const started = process.hrtime.bigint();
  await work();
  return Number(process.hrtime.bigint() - started) / 1e6;
}

/**
 * Peak resident memory of the dynamic provider hosts started for one workdir (their environment names
 * its backend), sampled from /proc: VmHWM is the kernel's own high-water mark, so short peaks count too.
 */
function watchProviderMemory(backendUrl: string): { stop(): number } {
  let peakKiB = 0;
  const sample = () => {
    for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
      try {
        if (!readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("dynamic-provider")) continue;
        if (!readFileSync(`/proc/${pid}/environ`, "utf8").includes(backendUrl)) continue;
        const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
        if (hwm) peakKiB = Math.max(peakKiB, Number(hwm[1]));
      } catch {
        // The process ended between listing and reading.
      }
    }
  };
  const timer = setInterval(sample, 200);
  return {
    stop() {
      clearInterval(timer);
      return peakKiB / 1024;
    },
  };
}

/** Bytes per resource of the stack's checkpoint after `up`. */
function stateBytesPerResource(stateDir: string, resources: number): number {
  const files = readdirSync(stateDir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(".json") && e.parentPath.includes(join(".pulumi", "stacks")))
    .map((e) => statSync(join(e.parentPath, e.name)).size);
  return Math.max(0, ...files) / resources;
}

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 200);
  if (!Number.isInteger(count) || count < 1) throw new Error(`usage: npm run bench [-- N]  (N namespaces, default 200; got ${process.argv[2]})`);
  ensurePulumiCli();
  const lab = await TestLab.create(1);
  const results: Record<string, number> = {};
  const table: Record<string, Record<string, number>> = {};
  try {
    const [a] = lab.hosts;
    const host = hostFor(connectionSchema.parse(a.connection()));
    await host.run(["true"]);
    results["pool: sequential command (ms/op)"] = (await timed(async () => {
      for (let i = 0; i < COMMANDS; i++) await host.run(["ip", "netns", "list"]);
    })) / COMMANDS;
    results["pool: 64 concurrent, maxSessions 2 (ms/op)"] = (await timed(async () => {
      for (let round = 0; round < COMMANDS / 50; round++) {
        await Promise.all(Array.from({ length: 64 }, () => host.run(["ip", "netns", "list"])));
      }
    })) / ((COMMANDS / 50) * 64);
    const namespace = provider("Namespace");
    const inputs = (await namespace.check({}, { connection: a.connection(), name: "bench" })).inputs;
    const cycles = 50;
    results["provider: Namespace create+delete (ms/cycle)"] = (await timed(async () => {
      for (let i = 0; i < cycles; i++) {
        const { id, outs } = await namespace.create(inputs);
        await namespace.delete(id, outs);
      }
    })) / cycles;
    closeAllHosts();

    const resources = 3 * count + 1;
    const runs: Run[] = [];
    try {
      for (const variant of ["floor", "pulumi-netns"]) {
        const work = PulumiWorkdir.create(`bench-${variant}`);
        const stack = await LocalWorkspace.createStack(
          { stackName: "bench", workDir: work.copyProject("scale", join(REPO_ROOT, "test", "e2e", "programs", "scale")) },
          { envVars: work.env },
        );
        runs.push({ variant, work, stack, memory: watchProviderMemory(work.env.PULUMI_BACKEND_URL), samples: { up: [], refresh: [], preview: [], destroy: [] } });
        await stack.setAllConfig({
          host: { value: a.address },
          hostKey: { value: a.hostKey },
          sshKey: { value: lab.clientKey, secret: true },
          count: { value: String(count) },
          floor: { value: String(variant === "floor") },
        });
      }
      // Each operation runs for both variants back to back (the repeated ones in turn), so that both meet
      // the machine in the same state: one variant's runs minutes after the other's differed by 10-20%.
      const measure = async (operation: Operation, work: (stack: Stack) => Promise<unknown>) => {
        for (let i = 0; i < REPEATS[operation]; i++) for (const run of runs) run.samples[operation].push(await timed(() => work(run.stack)));
      };
      await measure("up", (stack) => stack.up());
      const stateBytes = runs.map((run) => stateBytesPerResource(join(run.work.dir, "state"), resources));
      await measure("refresh", (stack) => stack.refresh());
      await measure("preview", (stack) => stack.preview());
      await measure("destroy", (stack) => stack.destroy());
      runs.forEach((run, i) => {
        table[run.variant] = {
          ...Object.fromEntries(OPERATIONS.map((operation) => [operation, median(run.samples[operation])])),
          "state bytes/resource": stateBytes[i],
          "provider peak RSS (MB)": run.memory.stop(),
        };
        process.stderr.write(`bench: ${run.variant} ${JSON.stringify(run.samples)}\n`);
      });
    } finally {
      for (const run of runs) run.work.remove();
    }
  } finally {
    closeAllHosts();
    lab.destroy();
  }
  const width = Math.max(...Object.keys(results).map((k) => k.length));
  for (const [what, value] of Object.entries(results)) process.stdout.write(`${what.padEnd(width)}  ${value.toFixed(1).padStart(9)}\n`);
  process.stdout.write(
    `\nN=${count} (${3 * count + 1} resources), one host, default settings; refresh and preview: median of ${REPEATS.refresh} and ${REPEATS.preview} runs\n`,
  );
  const header = ["", ...OPERATIONS, "state B/res", "provider RSS"];
  const lines = [header];
  for (const [variant, row] of Object.entries(table)) {
    const ratio = (op: string) => (variant === "floor" ? "" : ` (${(row[op] / table.floor[op]).toFixed(2)}×)`);
    lines.push([
      variant,
      ...OPERATIONS.map((op) => `${(row[op] / 1000).toFixed(1)} s${ratio(op)}`),
      row["state bytes/resource"].toFixed(0),
      `${row["provider peak RSS (MB)"].toFixed(0)} MB`,
    ]);
  }
  const widths = header.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  for (const line of lines) process.stdout.write(`| ${line.map((cell, i) => cell.padEnd(widths[i])).join(" | ")} |\n`);
  const rounded = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Math.round(v * 10) / 10]));
  process.stdout.write(`${JSON.stringify({ ...rounded(results), count, ...Object.fromEntries(Object.entries(table).map(([k, v]) => [k, rounded(v)])) })}\n`);
}

main().catch((err) => {
  // A failed CLI run carries its whole output: its end says why.
  process.stderr.write(`bench: ${(err instanceof Error ? err.stack ?? err.message : String(err)).slice(-4000)}\n`);
  process.exit(1);
});
