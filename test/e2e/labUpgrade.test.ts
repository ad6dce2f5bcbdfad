/**
 * Upgrades, through the real CLI, each in one plain `up` and in place:
 * - a stack made by the release before LabNode (each node a Namespace; its cables, addresses, routes and
 *   forwarding resources of their own; each segment's part a Bridge and a Vxlan): each node's Namespace
 *   becomes its LabNode and each Bridge its LabSegment (aliases), the old resources' deletes leave what
 *   the new ones took over;
 * - a stack made by the release before LabSegment (LabNodes; each segment's part a Bridge and a Vxlan):
 *   only the segments move.
 * No interface is made again, traffic passes, refresh and preview are clean, and destroy leaves both
 * hosts as they were.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import type { Stack } from "@pulumi/pulumi/automation";
import { hostSnapshot } from "../harness/hostSnapshot";
import { PulumiWorkdir, REPO_ROOT, requirePulumiCli } from "../harness/pulumiWorkdir";
import { TestHost, TestLab } from "../harness/throwawayHosts";
import { changes, projectStack, stepLog, twoHostConfig } from "../harness/e2e";

jest.setTimeout(600_000);

/** The last commit whose Lab made fine-grained resources. */
const BEFORE_LAB_NODE = "86800f989f09bcd761e07133c34adc5039d1501c";
/** The last commit whose Lab made a Bridge and a Vxlan for a segment's part on a host. */
const BEFORE_LAB_SEGMENT = "d43675b50e0f1e5847de16c576cf83cb6d6dcd0d";

let lab: TestLab;
let work: PulumiWorkdir;
let stack: Stack;
let east: TestHost;
let west: TestHost;

/** Builds a previous release's provider and SDK in `dir`. */
function buildPrevious(commit: string, dir: string): void {
  mkdirSync(dir);
  const archive = [
    "sh",
    "-c",
    'git -C "$1" archive "$2" package.json tsconfig.json provider sdk | tar -x -C "$3"',
    "sh",
    REPO_ROOT,
    commit,
    dir,
  ];
  try {
    execFileSync(archive[0], archive.slice(1), { stdio: "pipe" });
  } catch (err) {
    throw new Error(`commit ${commit} (a previous release) must be in this clone's history: ${(err as { stderr?: Buffer }).stderr}`, {
      cause: err,
    });
  }
  symlinkSync(join(REPO_ROOT, "node_modules"), join(dir, "node_modules"));
  execFileSync(join(REPO_ROOT, "node_modules", ".bin", "tsc"), ["-p", join(dir, "tsconfig.json")], { stdio: "pipe" });
}

function usePackage(root: string): void {
  const link = join(work.dir, "node_modules", "pulumi-netns");
  rmSync(link);
  symlinkSync(root, link);
}

const ping = (host: TestHost, ns: string, address: string) =>
  host.sh(["ip", "netns", "exec", ns, "ping", "-n", "-c", "1", "-W", "2", address], { allowFailure: true });

/** Each lab interface's ifindex, and each bridge's and VXLAN device's: the same after the upgrade means none was made again. */
function interfaces(): Record<string, number> {
  const seen: Record<string, number> = {};
  for (const [name, host] of [
    ["east", east],
    ["west", west],
  ] as const) {
    for (const l of JSON.parse(host.sh(["ip", "-d", "-j", "link", "show"])) as {
      ifname: string;
      ifindex: number;
      linkinfo?: { info_kind?: string };
    }[]) {
      if (l.linkinfo?.info_kind === "bridge" || l.linkinfo?.info_kind === "vxlan") seen[`${name}:${l.ifname}`] = l.ifindex;
    }
  }
  for (const [host, nodes] of [
    [east, ["gw", "pc1", "pc2"]],
    [west, ["web", "db"]],
  ] as const) {
    for (const node of nodes) {
      for (const l of JSON.parse(host.sh(["ip", "-n", node, "-j", "link", "show"])) as { ifname: string; ifindex: number }[]) {
        if (l.ifname !== "lo") seen[`${node}:${l.ifname}`] = l.ifindex;
      }
    }
  }
  return seen;
}

beforeAll(async () => {
  requirePulumiCli();
  lab = await TestLab.create(2);
  [east, west] = lab.hosts;
  work = PulumiWorkdir.create("e2e-lab-upgrade");
  ({ stack } = await projectStack(work, "two-host-lab", { ...twoHostConfig(lab), impair: { value: "false" } }));
});

afterAll(() => {
  lab?.destroy();
  work?.remove();
});

/**
 * Makes the lab with the release at `commit`, then upgrades it with this checkout in one plain `up`, whose
 * steps (other than deletes, and the deletes by type) must be the ones given; then proves it the same lab.
 */
async function upgradeFrom(commit: string, created: number, steps: string[], deleted: string[]): Promise<void> {
  const before = [hostSnapshot(east), hostSnapshot(west)];
  const records = () => [east, west].map((h) => h.sh(["sh", "-c", "find /run/pulumi-netns -type f ! -name lock 2>/dev/null | sort; true"]));
  const recordsBefore = records();
  const previous = join(work.dir, `previous-${commit.slice(0, 8)}`);
  buildPrevious(commit, previous);
  usePackage(previous);
  const made = await stack.up();
  expect(changes(made.summary.resourceChanges)).toEqual({ create: created });
  const addresses = made.outputs.addresses.value as Record<string, Record<string, string[]>>;
  const db = addresses.db.eth0[0].split("/")[0];
  expect(ping(east, "pc1", db)).toContain(" 1 received");
  const cables = interfaces();

  usePackage(REPO_ROOT);
  const upgrade = stepLog();
  const upgraded = await stack.up({ onEvent: upgrade.onEvent });
  expect(upgrade.steps.filter((s) => !s.startsWith("delete ")).sort()).toEqual(steps.sort());
  expect(
    upgrade.steps
      .filter((s) => s.startsWith("delete "))
      .map((s) => s.split(" ")[1])
      .sort(),
  ).toEqual(deleted.sort());
  expect(upgraded.outputs.addresses.value).toEqual(addresses);
  expect(interfaces()).toEqual(cables);
  expect(ping(east, "pc1", db)).toContain(" 1 received");
  expect(ping(west, "db", addresses.pc2.eth0[0].split("/")[0])).toContain(" 1 received");
  expect(changes((await stack.refresh()).summary.resourceChanges)).toEqual({});
  expect(changes((await stack.preview()).changeSummary)).toEqual({});
  // The sweep finds every object of the lab accounted for by the state, whatever kind made it first.
  const swept = spawnSync("node", [join(REPO_ROOT, "dist", "cli", "main.js"), "sweep", "--stack", "e2e"], {
    cwd: stack.workspace.workDir,
    env: { ...process.env, ...work.env },
    encoding: "utf8",
  });
  expect({ status: swept.status, stderr: swept.stderr, left: swept.stdout.match(/nothing left over/g) }).toEqual({
    status: 0,
    stderr: "",
    left: ["nothing left over", "nothing left over"],
  });

  // Stack, Lab, allocation, 5 nodes, 3 segment parts (the LAN's, and the link's on each host).
  expect(changes((await stack.destroy()).summary.resourceChanges)).toEqual({ delete: 11 });
  expect([hostSnapshot(east), hostSnapshot(west)]).toEqual(before);
  expect(records()).toEqual(recordsBefore);
}

/** The link across the hosts: its part on each host gains the VXLAN port its Vxlan had. */
const linkParts = ["east", "west"].map((host) => `update LabSegment lab/gw:wan0--web:eth0/${host}`);
/** The LAN's part, whose MTU its Bridge left to the kernel: the LabSegment sets it, so that it stays. */
const OFFICE = "update LabSegment lab/office/east";

test("a Lab made by the release before LabNode moves to LabNodes and LabSegments in one plain up, in place, and goes away clean", async () => {
  // The previous release: 5 namespaces, 2 forwarding sysctls, 6 veths, 7 addresses, 5 routes, 3 bridges,
  // 2 vxlan ends, the allocation, the Lab, the stack.
  const nodes = ["db", "gw", "pc1", "pc2", "web"].map((n) => `update LabNode lab/${n}`);
  const fineGrained = [...Array(7).fill("Address"), ...Array(5).fill("Route"), ...Array(2).fill("Sysctl"), ...Array(6).fill("Veth")];
  await upgradeFrom(BEFORE_LAB_NODE, 33, [...nodes, ...linkParts, OFFICE], [...fineGrained, "Vxlan", "Vxlan"]);
});

test("a Lab made by the release before LabSegment moves each segment's Bridge and Vxlan to one LabSegment in one plain up, in place", async () => {
  // The previous release: 5 LabNodes, 3 bridges, 2 vxlan ends, the allocation, the Lab, the stack.
  await upgradeFrom(BEFORE_LAB_SEGMENT, 13, [...linkParts, OFFICE], ["Vxlan", "Vxlan"]);
});
