/**
 * `pulumi import` through the real CLI, on the native provider configured from stack config (the default
 * provider: netns:host, netns:privateKey, netns:hostKey). A lab made by hand with ip, iptables and sysctl
 * is imported, every kind in one `pulumi import --file` (but Netem: see test/integration/import.test.ts),
 * and state holds each object's inputs. The program declaring exactly those (on pulumi-netns/native) previews and
 * refreshes with no change; an `up` then changes an imported veth in place and replaces the hand-made
 * port forward; `destroy` leaves the host as before the hand-made lab, but for the forwarding setting,
 * which goes back to what the import found (on).
 *
 * The engine would generate that program's code from those inputs, but the Node language host this
 * project builds (sdk v3.68.0, scripts/setup-pulumi.sh) has no GenerateProgram: the import runs with
 * --generate-code=false and the test writes the program from state, one `new` per resource.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LocalWorkspace, Stack } from "@pulumi/pulumi/automation";
import { hostSnapshot } from "../harness/hostSnapshot";
import { PulumiWorkdir, REPO_ROOT, requirePulumiCli } from "../harness/pulumiWorkdir";
import { TestHost, TestLab } from "../harness/throwawayHosts";
import { changes, stopwatch } from "../harness/e2e";
import { HandMade, makeHandMadeLab } from "../harness/handMadeLab";

jest.setTimeout(600_000);

let lab: TestLab;
let host: TestHost;
let work: PulumiWorkdir;
let dir: string;
let stack: Stack;
let before: Record<string, unknown>;
let handMade: HandMade[];
const clock = stopwatch();

/** The CLI in the project directory, on the test's stack; a failure fails the test with its output. */
function pulumi(...args: string[]): string {
  const result = spawnSync("pulumi", [...args, "--stack", "e2e", "--non-interactive"], {
    cwd: dir,
    env: { ...process.env, ...work.env },
    encoding: "utf8",
    timeout: 300_000,
  });
  if (result.status !== 0) throw new Error(`pulumi ${args.join(" ")} failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

interface StateResource {
  type: string;
  urn: string;
  id: string;
  inputs: Record<string, unknown>;
}

const imported = async () =>
  ((await stack.exportStack()).deployment.resources as StateResource[]).filter((r) => r.type.startsWith("netns:index:"));

/** The program: each resource with its inputs, as `pulumi import` would write it for TypeScript. */
function writeProgram(resources: { type: string; name: string; inputs: Record<string, unknown> }[]): void {
  const lines = resources.map(({ type, name, inputs }) => `new netns.${type}(${JSON.stringify(name)}, ${JSON.stringify(inputs)});`);
  writeFileSync(join(dir, "index.ts"), ['import * as netns from "pulumi-netns/native";', "", ...lines, ""].join("\n"));
}

beforeAll(async () => {
  requirePulumiCli();
  lab = await TestLab.create(1);
  host = lab.hosts[0];
  work = PulumiWorkdir.create("e2e-import");
  dir = work.copyProject("import", join(REPO_ROOT, "test", "e2e", "programs", "import"));
  const manifest = join(dir, "Pulumi.yaml");
  writeFileSync(manifest, readFileSync(manifest, "utf8").replace("NETNS_PLUGIN_DIR", join(REPO_ROOT, "bin")));
  stack = await LocalWorkspace.createStack({ stackName: "e2e", workDir: dir }, { envVars: work.env });
  await stack.setAllConfig({
    "netns:host": { value: host.address },
    "netns:hostKey": { value: host.hostKey },
    "netns:privateKey": { value: lab.clientKey, secret: true },
  });
  before = hostSnapshot(host);
  handMade = makeHandMadeLab(host);
});

afterAll(() => {
  console.log(clock.lines.join("\n"));
  lab?.destroy();
  work?.remove();
});

test("pulumi import of every kind made by hand (Netem aside) puts each object's inputs in state, and its own id", async () => {
  const resources = handMade.map(({ type, name, id }) => ({ type: `netns:index:${type}`, name, id }));
  writeFileSync(join(dir, "import.json"), JSON.stringify({ resources }));
  const out = clock.timed("pulumi import", async () =>
    pulumi("import", "--file", "import.json", "--yes", "--protect=false", "--generate-code=false"),
  );
  expect(await out).toMatch(new RegExp(`= ${handMade.length} imported`));
  const state = await imported();
  const byName = (a: { name?: string; type: string }, b: { name?: string; type: string }) =>
    `${a.type} ${a.name}`.localeCompare(`${b.type} ${b.name}`);
  expect(state.map((r) => ({ type: r.type, name: r.urn.split("::").pop(), id: r.id, inputs: r.inputs })).sort(byName)).toEqual(
    handMade.map(({ type, name, id, inputs }) => ({ type: `netns:index:${type}`, name, id, inputs })).sort(byName),
  );
  // Nothing in state of the connection: the default provider has it, from the stack's config.
  expect(JSON.stringify(state)).not.toMatch(/PRIVATE KEY|connection/);
});

test("the program declaring what was imported previews and refreshes with no change", async () => {
  writeProgram(handMade);
  await clock.timed("pulumi preview --expect-no-changes", async () => pulumi("preview", "--expect-no-changes"));
  await clock.timed("pulumi refresh --expect-no-changes", async () => pulumi("refresh", "--yes", "--expect-no-changes"));
});

test("up changes an imported veth in place and replaces the hand-made port forward with a marked one; no rule is left twice", async () => {
  writeProgram(
    handMade.map((r) =>
      r.type === "Veth"
        ? { ...r, inputs: { ...r.inputs, mtu: 1400 } }
        : r.type === "PortForward"
          ? { ...r, inputs: { ...r.inputs, port: 8081 } }
          : r,
    ),
  );
  const result = await clock.timed("pulumi up (an update, a replacement)", () => stack.up());
  expect(changes(result.summary.resourceChanges)).toEqual({ update: 1, replace: 1 });
  expect(JSON.parse(host.sh(["ip", "-j", "link", "show", "veth-red-br"]))[0].mtu).toBe(1400);
  const forwards = host
    .sh(["iptables", "-w", "-t", "nat", "-S"])
    .split("\n")
    .filter((line) => line.includes("DNAT --to-destination"));
  expect(forwards.map((line) => line.replace(/pulumi-netns:pf-[0-9a-f]{16}@import\/e2e/, "MARK"))).toEqual([
    '-A PREROUTING -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 8081 -m comment --comment "MARK" -j DNAT --to-destination 192.168.15.2:80',
    '-A OUTPUT ! -d 127.0.0.0/8 -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 8081 -m comment --comment "MARK" -j DNAT --to-destination 192.168.15.2:80',
  ]);
});

test("destroy leaves the host as before the hand-made lab, but for the forwarding, back to what import found", async () => {
  const result = await clock.timed("pulumi destroy", () => stack.destroy());
  // The resources and the stack.
  expect(changes(result.summary.resourceChanges)).toEqual({ delete: handMade.length + 1 });
  expect(hostSnapshot(host)).toEqual({ ...before, forwarding: "1\n0\n" });
  expect(host.sh(["sh", "-c", "find /run/pulumi-netns -type f ! -name lock 2>/dev/null; true"])).toBe("");
});
