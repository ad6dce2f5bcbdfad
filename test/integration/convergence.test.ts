/**
 * Every edit converges: random sequences of programs over every kind, applied to a real throwaway host
 * as the engine would. After each step a refresh finds every resource as its inputs ask, and no rule
 * carrying our mark lives without its resource; after the final destroy the host is as it was.
 * Some steps are killed: the provider dies once the K-th remote command's result is back (as
 * PULUMI_NETNS_KILL_AFTER_COMMANDS does to the real one), and the next plain apply of the same program
 * must converge all the same.
 *
 * Seeded: a failure prints the seed and path (PNT_EDIT_SEED=... PNT_EDIT_PATH=... reproduces it), and
 * the shrunk sequence goes into convergence.regressions.json, which runs first, every time.
 * PNT_EDIT_SHRINK=1 shrinks a failure to a minimal sequence. Longer runs: PNT_EDIT_RUNS (default 10)
 * sequences of PNT_EDIT_STEPS (default 20) programs.
 * The same runs on the native provider (the engine's protocol, the connection its configuration, the owner
 * from the URN): PNT_EDIT_NATIVE_RUNS (default 5) sequences; PNT_EDIT_DOOR=native puts the seeded and
 * regression runs there too.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { closeAllHosts } from "../../provider";
import { haltAfterCommands } from "../../provider/ssh/pool";
import { hostSnapshot } from "../harness/hostSnapshot";
import { TestHost, TestLab } from "../harness/throwawayHosts";
import { dynamicDoor, EditDriver, nativeDoor } from "../harness/editDriver";
import { completeSpec, programSpec, ProgramSpec, toProgram } from "../harness/programs";

const RUNS = Number(process.env.PNT_EDIT_RUNS ?? 10);
const NATIVE_RUNS = Number(process.env.PNT_EDIT_NATIVE_RUNS ?? 5);
type DoorName = "dynamic" | "native";
const DOOR = (process.env.PNT_EDIT_DOOR ?? "dynamic") as DoorName;
const STEPS = Number(process.env.PNT_EDIT_STEPS ?? 20);

/** Settings the programs touch, directly or as the kernel's side effects of forwarding. */
const SYSCTLS = [
  "net.ipv4.ip_forward",
  "net.ipv4.conf.all.forwarding",
  "net.ipv4.conf.default.forwarding",
  "net.ipv4.conf.all.accept_redirects",
  "net.ipv4.conf.all.rp_filter",
  "net.ipv6.conf.all.forwarding",
];

function snapshot(host: TestHost) {
  return { ...hostSnapshot(host), sysctls: host.sh(["sysctl", ...SYSCTLS]) };
}

/** Ids in `pulumi-netns:<id>` comments of every iptables rule on the host and in its namespaces. */
function markedRuleOwners(host: TestHost): string[] {
  const namespaces = host
    .sh(["ip", "netns", "list"])
    .split("\n")
    .filter(Boolean)
    .map((line) => line.split(" ")[0]);
  const dumps = ["iptables-save", "ip6tables-save"].flatMap((save) => [
    host.sh([save]),
    ...namespaces.map((ns) => host.sh(["ip", "netns", "exec", ns, save], { allowFailure: true })),
  ]);
  return [...dumps.join("\n").matchAll(/pulumi-netns:([A-Za-z0-9@/._-]+)/g)].map((m) => m[1]);
}

const killsSeen = { died: 0, ranToEnd: 0 };

/**
 * Applies the programs one by one (a step with a kill point first dies there); throws with the step, the
 * driver's log and what diverged.
 */
async function runSequence(
  specs: ProgramSpec[],
  expectSlots: string[][] = [],
  kills: (number | null)[] = [],
  door: DoorName = DOOR,
): Promise<void> {
  // The second host is only a VXLAN's remote end.
  const lab = await TestLab.create(2);
  const [host, peer] = lab.hosts;
  const driver = new EditDriver(door === "native" ? nativeDoor(host.connection()) : dynamicDoor);
  try {
    const before = snapshot(host);
    for (const [step, spec] of specs.entries()) {
      const where = () => `step ${step + 1} of ${specs.length}; operations so far:\n  ${driver.log.join("\n  ")}`;
      const program = toProgram(spec, host.connection(), host.address, peer.address);
      // A hand-written regression must still build what it names, or it no longer proves anything.
      expect(program.map((d) => d.key)).toEqual(expect.arrayContaining(expectSlots[step] ?? []));
      const kill = kills[step];
      if (kill) {
        haltAfterCommands(kill);
        const died = await driver.apply(program).then(
          () => "ran to its end first",
          (err: Error) => `died: ${err.message.split("\n")[0]}`,
        );
        haltAfterCommands(0);
        // The dead process's connections are gone with it.
        closeAllHosts();
        driver.log.push(`-- killed after ${kill} commands: ${died}`);
        killsSeen[died.startsWith("died") ? "died" : "ranToEnd"]++;
      }
      try {
        await driver.apply(program);
      } catch (err) {
        throw new Error(`${where()}\napply failed: ${(err as Error).message}`, { cause: err });
      }
      const problems = await driver.unconverged();
      const liveIds = new Set([...driver.live.values()].map((r) => r.id));
      const orphans = [...new Set(markedRuleOwners(host))].filter((id) => !liveIds.has(id));
      if (orphans.length > 0) problems.push(`rules marked for resources that do not exist: ${orphans.join(", ")}`);
      if (problems.length > 0) throw new Error(`${where()}\nnot converged:\n  ${problems.join("\n  ")}`);
    }
    await driver.destroy();
    expect(snapshot(host)).toEqual(before);
  } finally {
    closeAllHosts();
    lab.destroy();
  }
}

/** Each written as the slots its programs set; every other slot is absent. */
const regressions = JSON.parse(readFileSync(join(__dirname, "convergence.regressions.json"), "utf8")) as {
  found: string;
  sequence: Parameters<typeof completeSpec>[0][];
}[];

for (const regression of regressions) {
  test(
    `once failed: ${regression.found}`,
    () =>
      runSequence(
        regression.sequence.map(completeSpec),
        regression.sequence.map((choices) => Object.keys(choices)),
      ),
    10 * 60_000,
  );
}

/** A step's kill point, in about one step of four: the command after whose result the provider dies. */
const killPoint = fc.option(fc.integer({ min: 1, max: 60 }), { freq: 3 });

/** Random sequences through one door; a failure names the door with its seed. */
async function everyEditConverges(door: DoorName, runs: number, seed?: number): Promise<void> {
  const step = fc.record({ spec: programSpec, kill: killPoint });
  const before = killsSeen.died;
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: STEPS, maxLength: STEPS }), (steps) =>
      runSequence(
        steps.map((s) => s.spec),
        [],
        steps.map((s) => s.kill),
        door,
      ),
    ),
    // Shrinking replays sequences on real hosts for minutes: only when asked (PNT_EDIT_SHRINK=1).
    { numRuns: runs, seed, path: process.env.PNT_EDIT_PATH, verbose: true, endOnFailure: !process.env.PNT_EDIT_SHRINK },
  );
  console.log(`${door}: kill steps: ${killsSeen.died} died half way, ${killsSeen.ranToEnd} ran to their end before their kill point`);
  expect(killsSeen.died).toBeGreaterThan(before);
}

const seed = process.env.PNT_EDIT_SEED ? Number(process.env.PNT_EDIT_SEED) : undefined;

test(
  `every edit converges: ${RUNS} random sequences of ${STEPS} programs on a real host, some killed half way (${DOOR})`,
  () => everyEditConverges(DOOR, RUNS, seed),
  30 * 60_000,
);

test(
  `every edit converges on the native provider too: ${NATIVE_RUNS} random sequences of ${STEPS} programs, some killed half way`,
  () => everyEditConverges("native", NATIVE_RUNS),
  30 * 60_000,
);
