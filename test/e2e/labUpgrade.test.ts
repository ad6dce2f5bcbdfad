/**
 * Upgrade: a stack made by the release before LabNode (each node a Namespace; its cables, addresses,
 * routes and forwarding resources of their own) is taken over in place by this release's LabNodes in one
 * plain `up`, through the real CLI: each node's Namespace becomes its LabNode (an alias), the old
 * resources' deletes leave what the nodes took over, no interface is made again, traffic passes, refresh
 * and preview are clean, and destroy leaves both hosts as they were.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import type { Stack } from "@pulumi/pulumi/automation";
import { hostSnapshot } from "../harness/hostSnapshot";
import { PulumiWorkdir, REPO_ROOT, requirePulumiCli } from "../harness/pulumiWorkdir";
import { TestHost, TestLab } from "../harness/throwawayHosts";
import { changes, projectStack, stepLog, twoHostConfig } from "../harness/e2e";

jest.setTimeout(600_000);

/** The last commit whose Lab made fine-grained resources. */
const PREVIOUS_RELEASE = "86800f989f09bcd761e07133c34adc5039d1501c";

let lab: TestLab;
let work: PulumiWorkdir;
let stack: Stack;
let east: TestHost;
let west: TestHost;

/** Builds the previous release's provider and SDK next to the stack, and points the stack's `pulumi-netns` at `root`. */
function buildPrevious(dir: string): void {
  mkdirSync(dir);
  const archive = [
    "sh",
    "-c",
    'git -C "$1" archive "$2" package.json tsconfig.json provider sdk | tar -x -C "$3"',
    "sh",
    REPO_ROOT,
    PREVIOUS_RELEASE,
    dir,
  ];
  try {
    execFileSync(archive[0], archive.slice(1), { stdio: "pipe" });
  } catch (err) {
    throw new Error(
      `commit ${PREVIOUS_RELEASE} (the release before LabNode) must be in this clone's history: ${(err as { stderr?: Buffer }).stderr}`,
      { cause: err },
    );
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

/** Each lab interface's ifindex: the same after the upgrade means no cable was made again. */
function interfaces(): Record<string, number> {
  const seen: Record<string, number> = {};
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

test("a Lab made by the release before LabNode moves to LabNodes in one plain up, in place, and goes away clean", async () => {
  const before = [hostSnapshot(east), hostSnapshot(west)];
  const records = () => [east, west].map((h) => h.sh(["sh", "-c", "find /run/pulumi-netns -type f ! -name lock 2>/dev/null | sort; true"]));
  const recordsBefore = records();
  const previous = join(work.dir, "previous");
  buildPrevious(previous);
  usePackage(previous);
  // The previous release: 5 namespaces, 2 forwarding sysctls, 6 veths, 7 addresses, 5 routes, 3 bridges,
  // 2 vxlan ends, the allocation, the Lab, the stack.
  const made = await stack.up();
  expect(changes(made.summary.resourceChanges)).toEqual({ create: 33 });
  const addresses = made.outputs.addresses.value as Record<string, Record<string, string[]>>;
  const db = addresses.db.eth0[0].split("/")[0];
  expect(ping(east, "pc1", db)).toContain(" 1 received");
  const cables = interfaces();

  usePackage(REPO_ROOT);
  const upgrade = stepLog();
  const upgraded = await stack.up({ onEvent: upgrade.onEvent });
  const nodes = ["db", "gw", "pc1", "pc2", "web"];
  expect(upgrade.steps.filter((s) => !s.startsWith("delete ")).sort()).toEqual(nodes.map((n) => `update LabNode lab/${n}`));
  const deleted = upgrade.steps.filter((s) => s.startsWith("delete ")).map((s) => s.split(" ")[1]);
  expect(deleted.sort()).toEqual([
    ...Array(7).fill("Address"),
    ...Array(5).fill("Route"),
    ...Array(2).fill("Sysctl"),
    ...Array(6).fill("Veth"),
  ]);
  expect(upgraded.outputs.addresses.value).toEqual(addresses);
  expect(interfaces()).toEqual(cables);
  expect(ping(east, "pc1", db)).toContain(" 1 received");
  expect(ping(west, "db", addresses.pc2.eth0[0].split("/")[0])).toContain(" 1 received");
  expect(changes((await stack.refresh()).summary.resourceChanges)).toEqual({});
  expect(changes((await stack.preview()).changeSummary)).toEqual({});

  // Stack, Lab, allocation, 5 nodes, 3 bridges, 2 vxlan ends.
  expect(changes((await stack.destroy()).summary.resourceChanges)).toEqual({ delete: 13 });
  expect([hostSnapshot(east), hostSnapshot(west)]).toEqual(before);
  expect(records()).toEqual(recordsBefore);
});
