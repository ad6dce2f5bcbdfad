/**
 * `npm run bench [-- N]` (root, Linux): measured on a throwaway host made on this machine.
 *  1. Cost of one command through the shared connection pool, one at a time and 64 at a time.
 *  2. Cost of one resource through the provider (Namespace create + delete).
 *  3. `pulumi up`, `refresh`, `preview` (no changes) and `destroy` of N namespaces on one bridge (3N + 1
 *     resources, test/e2e/programs/scale) with the real CLI and default settings: first the engine's floor
 *     (the same program and graph with do-nothing dynamic resources), then pulumi-netns, in one run.
 *     Refresh and preview run several times (REPEATS) and count with their median. Also the peak RSS of
 *     the dynamic provider host and the state's size per resource.
 * Prints tables and, last, one line of JSON. A benchmark, not a test: nothing is asserted.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { connection as connectionSchema } from "../provider/connection";
import { closeAllHosts, provider } from "../provider";
import { hostFor } from "../provider/ssh/pool";
import { ensurePulumiCli, PulumiWorkdir, REPO_ROOT } from "./pulumiWorkdir";
import { TestLab } from "./throwawayHosts";

const COMMANDS = 200;
const OPERATIONS = ["up", "refresh", "preview", "destroy"] as const;

/** How many times the short operations run; up and destroy, a minute each at N=200, run once. */
const REPEATS = { refresh: 5, preview: 3 };

async function median(times: number, measure: () => Promise<number>): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < times; i++) samples.push(await measure());
  return samples.sort((a, b) => a - b)[Math.floor(times / 2)];
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
    for (const variant of ["floor", "pulumi-netns"]) {
      const work = PulumiWorkdir.create(`bench-${variant}`);
      try {
        const stack = await LocalWorkspace.createStack(
          { stackName: "bench", workDir: work.copyProject("scale", join(REPO_ROOT, "test", "e2e", "programs", "scale")) },
          { envVars: work.env },
        );
        await stack.setAllConfig({
          host: { value: a.address },
          hostKey: { value: a.hostKey },
          sshKey: { value: lab.clientKey, secret: true },
          count: { value: String(count) },
          floor: { value: String(variant === "floor") },
        });
        const memory = watchProviderMemory(work.env.PULUMI_BACKEND_URL);
        const row: Record<string, number> = {};
        row.up = await timed(() => stack.up());
        row["state bytes/resource"] = stateBytesPerResource(join(work.dir, "state"), resources);
        // Short runs vary by tens of percent from one to the next on a busy machine: their median counts.
        row.refresh = await median(REPEATS.refresh, () => timed(() => stack.refresh()));
        row.preview = await median(REPEATS.preview, () => timed(() => stack.preview()));
        row.destroy = await timed(() => stack.destroy());
        row["provider peak RSS (MB)"] = memory.stop();
        table[variant] = row;
        process.stderr.write(`bench: ${variant} ${JSON.stringify(row)}\n`);
      } finally {
        work.remove();
      }
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
