/**
 * One program, the bridge lab, through each door against the same throwaway host: the dynamic provider
 * (the package's main entry) and the native one (`pulumi-resource-netns`, pulumi-netns/native, one
 * Provider for the host). Both make the same objects, carry the same traffic and leave the host as it
 * was; the native path keeps neither the provider's code nor the connection in a resource's state.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { LocalWorkspace, Stack } from "@pulumi/pulumi/automation";
import { hostSnapshot } from "../harness/hostSnapshot";
import { proveBridgeLab } from "../harness/labProof";
import { PulumiWorkdir, REPO_ROOT, requirePulumiCli } from "../harness/pulumiWorkdir";
import { TestLab } from "../harness/throwawayHosts";
import { changes, stateText } from "../harness/e2e";

jest.setTimeout(300_000);

let lab: TestLab;
let work: PulumiWorkdir;
let dir: string;
let before: Record<string, unknown>;
const made: Record<string, unknown> = {};
const ips = { red: "192.168.15.1", blue: "192.168.15.2", gateway: "192.168.15.5" };

/**
 * Owners (HASH@PROJECT/STACK) and holder tokens are per resource and stack, and objects are listed (and
 * namespaces numbered) in the order they were made, which the engine's parallelism decides: the same lab
 * differs only in these.
 */
function comparable(snapshot: Record<string, unknown>): Record<string, string[]> {
  const text = (value: unknown) =>
    JSON.stringify(value)
      .replace(/[0-9a-f]{16}(@[\w.-]+\/[\w.-]+)?/g, "OWNER")
      .replace(/ \(id: \d+\)/, "");
  return Object.fromEntries(
    Object.entries(snapshot).map(([key, value]) => [key, (Array.isArray(value) ? value : String(value).split("\n")).map(text).sort()]),
  );
}

async function stackFor(door: string): Promise<Stack> {
  const stack = await LocalWorkspace.createStack({ stackName: door, workDir: dir }, { envVars: work.env });
  const [target] = lab.hosts;
  await stack.setAllConfig({
    door: { value: door },
    host: { value: target.address },
    hostKey: { value: target.hostKey },
    sshKey: { value: lab.clientKey, secret: true },
  });
  return stack;
}

beforeAll(async () => {
  requirePulumiCli();
  lab = await TestLab.create(2);
  work = PulumiWorkdir.create("e2e-two-doors");
  dir = work.copyProject("two-doors", join(REPO_ROOT, "test", "e2e", "programs", "two-doors"));
  before = hostSnapshot(lab.hosts[0]);
});

afterAll(() => {
  lab?.destroy();
  work?.remove();
});

test("dynamic door: the lab is made, carries traffic, and destroy leaves the host as it was", async () => {
  const stack = await stackFor("dynamic");
  expect(changes((await stack.up()).summary.resourceChanges)).toEqual({ create: 14 });
  expect(await proveBridgeLab(lab.hosts[0], lab.hosts[1], ips)).toHaveLength(5);
  made.dynamic = comparable(hostSnapshot(lab.hosts[0]));
  expect(changes((await stack.destroy()).summary.resourceChanges)).toEqual({ delete: 14 });
  expect(hostSnapshot(lab.hosts[0])).toEqual(before);
});

test("native door: the same objects on the host, drift caught and repaired, small state without secrets, and a clean destroy", async () => {
  const stack = await stackFor("native");
  // 13 resources, the stack and the explicit provider.
  expect(changes((await stack.up()).summary.resourceChanges)).toEqual({ create: 15 });
  expect(await proveBridgeLab(lab.hosts[0], lab.hosts[1], ips)).toHaveLength(5);
  made.native = comparable(hostSnapshot(lab.hosts[0]));
  expect(made.native).toEqual(made.dynamic);
  expect(changes((await stack.preview()).changeSummary)).toEqual({});
  expect(changes((await stack.refresh()).summary.resourceChanges)).toEqual({});
  // sweep reads a native stack: its host from the provider, every object accounted for.
  const swept = spawnSync("node", [join(REPO_ROOT, "dist", "cli", "main.js"), "sweep", "--stack", "native"], {
    cwd: dir,
    env: { ...process.env, ...work.env },
    encoding: "utf8",
  });
  expect({ status: swept.status, stdout: swept.stdout, stderr: swept.stderr }).toEqual({
    status: 0,
    stdout: `stack two-doors/native: 13 resources in its state\nroot@${lab.hosts[0].address}:22: nothing left over\n`,
    stderr: "",
  });

  lab.hosts[0].sh(["ip", "-n", "blue", "addr", "del", "192.168.15.2/24", "dev", "veth-blue"]);
  // The kernel drops the default route through it too.
  expect(changes((await stack.refresh()).summary.resourceChanges)).toEqual({ delete: 2 });
  await stack.up();
  expect(changes((await stack.preview()).changeSummary)).toEqual({});
  expect(await proveBridgeLab(lab.hosts[0], lab.hosts[1], ips)).toHaveLength(5);

  const resources = (await stack.exportStack()).deployment.resources as { type: string; inputs: object; outputs: object }[];
  const kinds = resources.filter((r) => r.type.startsWith("netns:index:"));
  expect(kinds).toHaveLength(13);
  // A resource's own properties: under 1 KB, but for the rule kinds' `rules` (the rules on the host, as
  // iptables arguments). The engine adds its URN, provider reference, times and the program's stack trace.
  const own = (r: { inputs: object; outputs: object }) =>
    JSON.stringify({ inputs: r.inputs, outputs: { ...r.outputs, rules: undefined } }).length;
  expect(kinds.map((r) => ({ type: r.type, size: own(r) })).filter(({ size }) => size >= 1024)).toEqual([]);
  expect(kinds.filter((r) => /connection|__provider/.test(JSON.stringify(r)))).toEqual([]);
  // The key is the provider's, once, as a secret (the Automation API's export shows it decrypted).
  const provider = resources.find((r) => r.type === "pulumi:providers:netns")! as unknown as {
    inputs: Record<string, Record<string, string>>;
  };
  expect(provider.inputs.privateKey.plaintext).toContain("PRIVATE KEY");
  const stateFiles = stateText(work);
  expect(stateFiles).toContain("netns:index:Veth");
  expect(stateFiles).not.toContain("PRIVATE KEY");

  expect(changes((await stack.destroy()).summary.resourceChanges)).toEqual({ delete: 15 });
  expect(hostSnapshot(lab.hosts[0])).toEqual(before);
});
