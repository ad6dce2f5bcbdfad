/**
 * Scale: a Lab of 50 nodes over two throwaway hosts (57 resources) with the real Pulumi CLI: up, a
 * ping between the hosts' far ends, an empty refresh, and destroy leaving both hosts as they were; then
 * the 50 nodes on smaller LANs with all-pairs checks (every node reaches every other), run again by
 * refresh. The wall times are printed.
 */
import { join } from "node:path";
import { hostSnapshot } from "../harness/hostSnapshot";
import { PulumiWorkdir, REPO_ROOT, requirePulumiCli } from "../harness/pulumiWorkdir";
import { TestLab } from "../harness/throwawayHosts";
import { changes, projectStack, stopwatch, twoHostConfig } from "../harness/e2e";

jest.setTimeout(900_000);

let lab: TestLab;
let work: PulumiWorkdir;
let nativeWork: PulumiWorkdir;

beforeAll(async () => {
  requirePulumiCli();
  lab = await TestLab.create(2);
  work = PulumiWorkdir.create("e2e-lab-scale");
  nativeWork = PulumiWorkdir.create("e2e-lab-scale-native");
});

afterAll(() => {
  lab?.destroy();
  work?.remove();
  nativeWork?.remove();
});

test("a Lab of 50 nodes over two hosts comes up, carries traffic between them, refreshes clean and goes away", async () => {
  const [east, west] = lab.hosts;
  const before = [hostSnapshot(east), hostSnapshot(west)];
  const { stack } = await projectStack(
    work,
    "lab-scale",
    { ...twoHostConfig(lab), perHost: { value: "25" } },
    join(REPO_ROOT, "test", "e2e", "programs", "lab-scale"),
  );
  const { lines: timings, timed } = stopwatch();
  try {
    // 50 nodes (each one LabNode); per host a LAN's bridge; the routers' link across the hosts (a LabSegment
    // per host: its bridge and VXLAN port); the Lab and its allocation; the stack.
    const up = await timed("up", () => stack.up());
    expect(changes(up.summary.resourceChanges)).toEqual({ create: 57 });
    expect(JSON.parse(east.sh(["ip", "-j", "netns", "list"]))).toHaveLength(25);
    expect(JSON.parse(west.sh(["ip", "-j", "netns", "list"]))).toHaveLength(25);
    const far = up.outputs.addresses.value.west24.eth0[0].split("/")[0];
    expect(east.sh(["ip", "netns", "exec", "east24", "ping", "-n", "-c", "1", "-W", "2", far], { allowFailure: true })).toContain(
      " 1 received",
    );
    expect(changes((await timed("refresh", () => stack.refresh())).summary.resourceChanges)).toEqual({});
    expect(changes((await timed("destroy", () => stack.destroy())).summary.resourceChanges)).toEqual({ delete: 57 });
    expect([hostSnapshot(east), hostSnapshot(west)]).toEqual(before);

    // All pairs: 50 checks of 49 targets each (2,450 pairs, 3 pings each), made by up and run again by
    // refresh, with each host's nodes on LANs of 5 behind the router. One LAN per host would need 1,200
    // neighbour (ARP) entries, past the kernel's table that all namespaces share (gc_thresh3, 1,024 here),
    // and this machine's settings are not the tests' to change; LANs of 5 need about 300.
    // 50 nodes; per host 5 LANs (a bridge each); the link across the hosts (2); the stack, Lab and allocation; 50 checks.
    await stack.setAllConfig({ lanSize: { value: "5" }, allPairs: { value: "true" } });
    expect(
      changes((await timed("up of the same 50 nodes on LANs of 5, with all-pairs checks", () => stack.up())).summary.resourceChanges),
    ).toEqual({ create: 115 });
    expect(changes((await timed("refresh with all-pairs checks", () => stack.refresh())).summary.resourceChanges)).toEqual({});
    expect(changes((await timed("destroy", () => stack.destroy())).summary.resourceChanges)).toEqual({ delete: 115 });
    expect([hostSnapshot(east), hostSnapshot(west)]).toEqual(before);
  } finally {
    console.log(`Lab scale, wall times:\n  ${timings.join("\n  ")}`);
  }
});

test("the same Lab on the native provider: one Provider per host, the same objects, all pairs reached, small state, and a clean destroy", async () => {
  const [east, west] = lab.hosts;
  const before = [hostSnapshot(east), hostSnapshot(west)];
  const { stack } = await projectStack(
    nativeWork,
    "lab-scale",
    { ...twoHostConfig(lab), perHost: { value: "25" }, lanSize: { value: "5" }, allPairs: { value: "true" }, door: { value: "native" } },
    join(REPO_ROOT, "test", "e2e", "programs", "lab-scale"),
  );
  const { lines: timings, timed } = stopwatch();
  try {
    // As above (115), and the Lab's two providers.
    const up = await timed("native up, all-pairs", () => stack.up());
    expect(changes(up.summary.resourceChanges)).toEqual({ create: 117 });
    const far = up.outputs.addresses.value.west24.eth0[0].split("/")[0];
    expect(east.sh(["ip", "netns", "exec", "east24", "ping", "-n", "-c", "1", "-W", "2", far], { allowFailure: true })).toContain(
      " 1 received",
    );
    expect(changes((await timed("native refresh", () => stack.refresh())).summary.resourceChanges)).toEqual({});
    expect(changes((await timed("native preview", () => stack.preview())).changeSummary)).toEqual({});
    const resources = (await stack.exportStack()).deployment.resources as { type: string }[];
    expect(resources.filter((r) => r.type === "pulumi:providers:netns")).toHaveLength(2);
    const size = (type: string) => {
      const of = resources.filter((r) => r.type === type).map((r) => JSON.stringify(r).length);
      return Math.round(of.reduce((a, b) => a + b, 0) / of.length);
    };
    timings.push(
      `state per resource: LabNode ${size("netns:index:LabNode")} B, Check ${size("netns:index:Check")} B, LabSegment ${size("netns:index:LabSegment")} B`,
    );
    expect(resources.filter((r) => /connection|__provider/.test(JSON.stringify(r)) && r.type !== "pulumi:providers:netns")).toEqual([]);
    expect(changes((await timed("native destroy", () => stack.destroy())).summary.resourceChanges)).toEqual({ delete: 117 });
    expect([hostSnapshot(east), hostSnapshot(west)]).toEqual(before);
  } finally {
    console.log(`Lab scale on the native provider:\n  ${timings.join("\n  ")}`);
  }
});
