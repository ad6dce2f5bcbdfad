/**
 * `npm run bench [-- N]` (root, Linux): measured on a throwaway host made on this machine.
 *  1. Cost of one command through the shared connection pool, one at a time and 64 at a time.
 *  2. Cost of one resource through the provider (Namespace create + delete).
 *  3. `pulumi up`, `refresh`, `preview` (no changes) and `destroy` of N namespaces on one bridge (3N + 1
 *     resources, test/e2e/programs/scale) with the real CLI and default settings: the engine's floor (the
 *     same program and graph with do-nothing dynamic resources) and pulumi-netns, in one run.
 *     Each operation runs for both variants back to back (with --in-turn: the floor's whole life, then
 *     pulumi-netns's); refresh and preview several times (REPEATS),
 *     counting with their median. Also the peak RSS of the dynamic provider host and the state's size per
 *     resource.
 * Prints tables and, last, one line of JSON. A benchmark, not a test: nothing is asserted.
 *
 * `npm run bench -- --lab N[,N...] [--door dynamic,native] [--parallel P] [--all-pairs K]`: per size and provider (door;
 * default dynamic), a Lab of N nodes over two throwaway hosts
 * (test/e2e/programs/lab-bench: routed groups of 50, the routers on one LAN across the hosts), with the
 * real CLI: `up`, `refresh`, `preview` (no changes) and `destroy` once each, the resource count, the state's
 * size, and the peak RSS of the CLI (the engine) and of the provider process. It proves what it
 * measured: after up a ping crosses from the last group's router to the first's LAN, after destroy both
 * hosts are as they were. PNT_BENCH_ENGINE_ENV ("KEY=VALUE ...") adds to the CLI's environment and
 * `--parallel` goes to every operation, so that engine settings can be compared.
 */
import { deepStrictEqual } from "node:assert";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { LocalWorkspace, Stack } from "@pulumi/pulumi/automation";
import { connection as connectionSchema } from "../provider/connection";
import { closeAllHosts, provider } from "../provider";
import { hostFor } from "../provider/ssh/pool";
import { hostSnapshot } from "../test/harness/hostSnapshot";
import { ensurePulumiCli, PulumiWorkdir, REPO_ROOT } from "../test/harness/pulumiWorkdir";
import { TestLab } from "../test/harness/throwawayHosts";

const COMMANDS = 200;

/** How many times each operation runs (for both variants in turn); up and destroy take a minute each at N=200. */
const REPEATS = { up: 1, refresh: 5, preview: 3, destroy: 1 };
type Operation = keyof typeof REPEATS;
const OPERATIONS = Object.keys(REPEATS) as Operation[];

interface Run {
  variant: string;
  work: PulumiWorkdir;
  stack: Stack;
  memory: ReturnType<typeof watchProcesses>;
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

/** A process's command line, split into its arguments. */
type ProcessMatch = (argv: string[]) => boolean;
const isProvider: ProcessMatch = (argv) => argv.some((arg) => arg.includes("dynamic-provider") || arg.endsWith("provider/native/main.js"));
/** The CLI itself (the engine): Automation runs it by name from PATH. */
const isCli: ProcessMatch = (argv) => /(^|\/)pulumi$/.test(argv[0]);
/** The Node program that the language host runs (where the Lab plans and registers its resources). */
const isProgram: ProcessMatch = (argv) => argv.some((arg) => arg.includes("@pulumi/pulumi/cmd/run"));

/** /proc/PID/stat counts CPU time in USER_HZ ticks, 100 a second on every Linux ABI. */
const TICKS_PER_SECOND = 100;

/**
 * Peak resident memory and CPU time of the processes started for one workdir (their environment names
 * its backend) that `matches`, sampled from /proc: VmHWM is the kernel's own high-water mark, so short
 * peaks count too. CPU time is each process's last sample, so up to one interval of a process's end is missed.
 */
function watchProcesses(backendUrl: string, matches: ProcessMatch): { peakMB(): number; cpuSeconds(): number; stop(): void } {
  let peakKiB = 0;
  // By pid and start time, so that a reused pid is another process.
  const ticks = new Map<string, number>();
  const sample = () => {
    for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
      try {
        if (!matches(readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0"))) continue;
        if (!readFileSync(`/proc/${pid}/environ`, "utf8").includes(backendUrl)) continue;
        const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
        if (hwm) peakKiB = Math.max(peakKiB, Number(hwm[1]));
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        // After the command name: state is field 3, utime and stime 14 and 15, starttime 22.
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        ticks.set(`${pid}/${fields[19]}`, Number(fields[11]) + Number(fields[12]));
      } catch {
        // The process ended between listing and reading.
      }
    }
  };
  const timer = setInterval(sample, 200);
  return {
    peakMB: () => peakKiB / 1024,
    cpuSeconds: () => [...ticks.values()].reduce((a, b) => a + b, 0) / TICKS_PER_SECOND,
    stop: () => clearInterval(timer),
  };
}

/** Bytes of the stack's checkpoint (the largest state file; backups end in .bak, history lives elsewhere). */
function stateBytes(stateDir: string): number {
  const files = readdirSync(stateDir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(".json") && e.parentPath.includes(join(".pulumi", "stacks")))
    .map((e) => statSync(join(e.parentPath, e.name)).size);
  return Math.max(0, ...files);
}

/** Prints rows as a Markdown table, the first row its header. */
function printTable(lines: string[][]): void {
  const widths = lines[0].map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  for (const line of lines) process.stdout.write(`| ${line.map((cell, i) => cell.padEnd(widths[i])).join(" | ")} |\n`);
}

async function benchNamespaces(given: string | undefined, inTurn: boolean): Promise<void> {
  const count = Number(given ?? 200);
  if (!Number.isInteger(count) || count < 1) throw new Error(`usage: npm run bench [-- N]  (N namespaces, default 200; got ${given})`);
  ensurePulumiCli();
  const lab = await TestLab.create(1);
  const results: Record<string, number> = {};
  const table: Record<string, Record<string, number>> = {};
  try {
    const [a] = lab.hosts;
    const host = hostFor(connectionSchema.parse(a.connection()));
    await host.run(["true"]);
    results["pool: sequential command (ms/op)"] =
      (await timed(async () => {
        for (let i = 0; i < COMMANDS; i++) await host.run(["ip", "netns", "list"]);
      })) / COMMANDS;
    results["pool: 64 concurrent, maxSessions 2 (ms/op)"] =
      (await timed(async () => {
        for (let round = 0; round < COMMANDS / 50; round++) {
          await Promise.all(Array.from({ length: 64 }, () => host.run(["ip", "netns", "list"])));
        }
      })) /
      ((COMMANDS / 50) * 64);
    const namespace = provider("Namespace");
    const inputs = (await namespace.check({}, { connection: a.connection(), name: "bench" })).inputs;
    const cycles = 50;
    results["provider: Namespace create+delete (ms/cycle)"] =
      (await timed(async () => {
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
        runs.push({
          variant,
          work,
          stack,
          memory: watchProcesses(work.env.PULUMI_BACKEND_URL, isProvider),
          samples: { up: [], refresh: [], preview: [], destroy: [] },
        });
        await stack.setAllConfig({
          host: { value: a.address },
          hostKey: { value: a.hostKey },
          sshKey: { value: lab.clientKey, secret: true },
          count: { value: String(count) },
          floor: { value: String(variant === "floor") },
        });
      }
      // By default each operation runs for both variants back to back (the repeated ones in turn), so that
      // both meet the machine in the same state: one variant's runs minutes after the other's differed by
      // 10-20%. With --in-turn, each variant's whole life runs before the next one's (as two stacks run by hand).
      const work: Record<Operation, (stack: Stack) => Promise<unknown>> = {
        up: (stack) => stack.up(),
        refresh: (stack) => stack.refresh(),
        preview: (stack) => stack.preview(),
        destroy: (stack) => stack.destroy(),
      };
      const bytesPerResource: number[] = [];
      const measure = async (operation: Operation, some: Run[]) => {
        for (let i = 0; i < REPEATS[operation]; i++) {
          for (const run of some) run.samples[operation].push(await timed(() => work[operation](run.stack)));
        }
        if (operation === "up")
          for (const run of some) bytesPerResource[runs.indexOf(run)] = stateBytes(join(run.work.dir, "state")) / resources;
      };
      for (const some of inTurn ? runs.map((run) => [run]) : [runs]) for (const operation of OPERATIONS) await measure(operation, some);
      runs.forEach((run, i) => {
        run.memory.stop();
        table[run.variant] = {
          ...Object.fromEntries(OPERATIONS.map((operation) => [operation, median(run.samples[operation])])),
          "state bytes/resource": bytesPerResource[i],
          "provider peak RSS (MB)": run.memory.peakMB(),
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
    `\nN=${count} (${3 * count + 1} resources), one host, default settings, ${inTurn ? "each variant's whole life in turn" : "each operation for both variants back to back"}; ` +
      `refresh and preview: median of ${REPEATS.refresh} and ${REPEATS.preview} runs\n`,
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
  printTable(lines);
  const rounded = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Math.round(v * 10) / 10]));
  process.stdout.write(
    `${JSON.stringify({ ...rounded(results), count, inTurn, ...Object.fromEntries(Object.entries(table).map(([k, v]) => [k, rounded(v)])) })}\n`,
  );
}

/** Nodes per group in test/e2e/programs/lab-bench, whose routers are named gGr. */
const LAB_GROUP_SIZE = 50;
const LAB_OPERATIONS = ["up", "refresh", "preview", "destroy"] as const;
type LabOperation = (typeof LAB_OPERATIONS)[number];
const PROCESSES = { cli: isCli, program: isProgram, provider: isProvider };
type Role = keyof typeof PROCESSES;

interface EngineSettings {
  env: Record<string, string>;
  parallel?: number;
  /** All pairs among the first this many nodes of group 0 (its router first): a Check per node, run by up and refresh. */
  allPairs?: number;
}

const DOORS = ["dynamic", "native"] as const;
type Door = (typeof DOORS)[number];

interface LabRow {
  door: Door;
  nodes: number;
  resources: number;
  seconds: Record<LabOperation, number>;
  /** CPU seconds of each role's processes during each operation (sampled, so a little short). */
  cpuSeconds: Record<LabOperation, Record<Role, number>>;
  stateBytes: number;
  peakMB: Record<Role, number>;
}

async function benchLab(nodes: number, door: Door, settings: EngineSettings): Promise<LabRow> {
  const lab = await TestLab.create(2);
  const work = PulumiWorkdir.create(`bench-lab-${nodes}`);
  const watches = Object.fromEntries(
    Object.entries(PROCESSES).map(([role, matches]) => [role, watchProcesses(work.env.PULUMI_BACKEND_URL, matches)]),
  ) as Record<Role, ReturnType<typeof watchProcesses>>;
  const cpuNow = () =>
    Object.fromEntries(Object.entries(watches).map(([role, watch]) => [role, watch.cpuSeconds()])) as Record<Role, number>;
  try {
    const [east, west] = lab.hosts;
    const stack = await LocalWorkspace.createStack(
      { stackName: "bench", workDir: work.copyProject("lab-bench", join(REPO_ROOT, "test", "e2e", "programs", "lab-bench")) },
      { envVars: { ...work.env, ...settings.env } },
    );
    await stack.setAllConfig({
      hostA: { value: east.address },
      hostKeyA: { value: east.hostKey },
      hostB: { value: west.address },
      hostKeyB: { value: west.hostKey },
      sshKey: { value: lab.clientKey, secret: true },
      nodes: { value: String(nodes) },
      door: { value: door },
      ...(settings.allPairs ? { allPairsGroup: { value: "0" }, allPairsSize: { value: String(settings.allPairs) } } : {}),
    });
    const before = [hostSnapshot(east), hostSnapshot(west)];
    const options = settings.parallel !== undefined ? { parallel: settings.parallel } : {};
    const seconds = {} as LabRow["seconds"];
    const cpuSeconds = {} as LabRow["cpuSeconds"];
    const measure = async <T>(operation: LabOperation, run: () => Promise<T>): Promise<T> => {
      const cpuBefore = cpuNow();
      const started = process.hrtime.bigint();
      const result = await run();
      seconds[operation] = Number(process.hrtime.bigint() - started) / 1e9;
      const cpuAfter = cpuNow();
      cpuSeconds[operation] = Object.fromEntries(
        Object.entries(cpuAfter).map(([role, s]) => [role, s - cpuBefore[role as Role]]),
      ) as Record<Role, number>;
      return result;
    };

    const up = await measure("up", () => stack.up(options));
    const resources = Object.values(up.summary.resourceChanges ?? {}).reduce((a, b) => a + b, 0);
    const bytes = stateBytes(join(work.dir, "state"));
    // Across the hosts (the last group is on west, the first on east) and through both routers.
    const groups = Math.ceil(nodes / LAB_GROUP_SIZE);
    const last = `g${groups - 1}r`;
    const target = up.outputs.addresses.value.g0r.lan[0].split("/")[0];
    const ping = (groups > 1 ? west : east).sh(["ip", "netns", "exec", last, "ping", "-n", "-c", "1", "-W", "2", target], {
      allowFailure: true,
    });
    if (!ping.includes(" 1 received")) throw new Error(`${last} does not reach g0r's LAN address ${target}:\n${ping}`);
    await measure("refresh", () => stack.refresh(options));
    const preview = await measure("preview", () => stack.preview(options));
    const changed = Object.entries(preview.changeSummary).filter(([kind]) => kind !== "same");
    if (changed.length > 0) throw new Error(`the preview after refresh is not empty: ${JSON.stringify(Object.fromEntries(changed))}`);
    await measure("destroy", () => stack.destroy(options));
    // Its error shows what destroy left.
    deepStrictEqual([hostSnapshot(east), hostSnapshot(west)], before);
    const peakMB = Object.fromEntries(Object.entries(watches).map(([role, watch]) => [role, watch.peakMB()])) as Record<Role, number>;
    return { door, nodes, resources, seconds, cpuSeconds, stateBytes: bytes, peakMB };
  } finally {
    for (const watch of Object.values(watches)) watch.stop();
    lab.destroy();
    work.remove();
  }
}

function engineSettings(parallel: string | undefined, allPairs: string | undefined): EngineSettings {
  const env: Record<string, string> = {};
  for (const pair of (process.env.PNT_BENCH_ENGINE_ENV ?? "").split(/\s+/).filter(Boolean)) {
    const at = pair.indexOf("=");
    if (at < 1) throw new Error(`PNT_BENCH_ENGINE_ENV: "${pair}" is not KEY=VALUE`);
    env[pair.slice(0, at)] = pair.slice(at + 1);
  }
  const whole = (option: string, value: string | undefined) => {
    if (value !== undefined && !/^[1-9]\d*$/.test(value)) throw new Error(`--${option} takes a positive whole number, got ${value}`);
    return value === undefined ? {} : { [option === "all-pairs" ? "allPairs" : option]: Number(value) };
  };
  return { env, ...whole("parallel", parallel), ...whole("all-pairs", allPairs) };
}

const LAB_USAGE = "usage: npm run bench -- --lab N[,N...] [--door dynamic,native] [--parallel P] [--all-pairs K]";

async function benchLabs(sizesArg: string, doorsArg: string, parallel: string | undefined, allPairs: string | undefined): Promise<void> {
  const sizes = sizesArg.split(",").map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`${LAB_USAGE}  (got --lab ${sizesArg})`);
  const doors = doorsArg.split(",") as Door[];
  if (doors.some((door) => !DOORS.includes(door))) throw new Error(`${LAB_USAGE}  (got --door ${doorsArg})`);
  const settings = engineSettings(parallel, allPairs);
  const described =
    [
      ...Object.entries(settings.env).map(([k, v]) => `${k}=${v}`),
      ...(settings.parallel ? [`--parallel ${settings.parallel}`] : []),
      ...(settings.allPairs ? [`all pairs among ${settings.allPairs} nodes of group 0`] : []),
    ].join(", ") || "default settings";
  ensurePulumiCli();
  const tenths = (_key: string, value: unknown) => (typeof value === "number" ? Math.round(value * 10) / 10 : value);
  const rows: LabRow[] = [];
  for (const nodes of sizes) {
    for (const door of doors) {
      const row = await benchLab(nodes, door, settings);
      process.stderr.write(`bench: lab ${nodes} (${door}) CPU seconds by operation ${JSON.stringify(row.cpuSeconds, tenths)}\n`);
      rows.push(row);
    }
  }
  process.stdout.write(`\nLab, two hosts, groups of ${LAB_GROUP_SIZE}; ${described}; each operation once\n`);
  printTable([
    ["nodes", "provider", "resources", ...LAB_OPERATIONS, "state MB", "state B/res", "CLI peak", "provider peak"],
    ...rows.map((row) => [
      String(row.nodes),
      row.door,
      String(row.resources),
      ...LAB_OPERATIONS.map((op) => `${row.seconds[op].toFixed(1)} s`),
      (row.stateBytes / 1e6).toFixed(2),
      (row.stateBytes / row.resources).toFixed(0),
      `${row.peakMB.cli.toFixed(0)} MB`,
      `${row.peakMB.provider.toFixed(0)} MB`,
    ]),
  ]);
  process.stdout.write(`${JSON.stringify({ lab: rows, settings: { env: settings.env, parallel: settings.parallel ?? null } }, tenths)}\n`);
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    options: {
      lab: { type: "string" },
      door: { type: "string" },
      parallel: { type: "string" },
      "all-pairs": { type: "string" },
      "in-turn": { type: "boolean" },
    },
    allowPositionals: true,
  });
  if (values.lab !== undefined) {
    if (values["in-turn"]) throw new Error("--in-turn goes with the namespace bench (npm run bench -- [N] --in-turn)");
    return benchLabs(values.lab, values.door ?? "dynamic", values.parallel, values["all-pairs"]);
  }
  if (values.parallel !== undefined || values["all-pairs"] !== undefined || values.door !== undefined) {
    throw new Error("--door, --parallel and --all-pairs go with --lab (the namespace bench runs with default settings)");
  }
  return benchNamespaces(positionals[0], values["in-turn"] ?? false);
}

main().catch((err) => {
  // A failed CLI run carries its whole output: its end says why.
  const text = err instanceof Error ? (err.stack ?? err.message) : String(err);
  // Pulumi's diagnostics come before its outputs, which for a big lab are long.
  const diagnostics = /Diagnostics:[\s\S]*?(?=\n\s*Outputs:|$)/.exec(text)?.[0];
  process.stderr.write(`bench: ${diagnostics ? `${diagnostics.slice(0, 8000)}\n` : ""}${text.slice(-4000)}\n`);
  process.exit(1);
});
