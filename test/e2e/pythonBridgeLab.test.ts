/**
 * examples/python-bridge-lab through the real CLI: a Python program (the Python language host, the
 * `pulumi` wheel in the project's venv, the SDK generated from schema.json) on the native provider
 * against a throwaway host. Up with real traffic, an empty preview, a drift caught by refresh and
 * repaired by up, no private key in the state files, and destroy leaving the host as it was.
 */
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Stack } from "@pulumi/pulumi/automation";
import { hostSnapshot } from "../harness/hostSnapshot";
import { proveBridgeLab } from "../harness/labProof";
import { PulumiWorkdir, REPO_ROOT, requirePulumiCli } from "../harness/pulumiWorkdir";
import { TestLab } from "../harness/throwawayHosts";
import { changes, projectStack, stateText } from "../harness/e2e";

// The first up makes the venv and installs the pulumi wheel from PyPI.
jest.setTimeout(600_000);

let lab: TestLab;
let work: PulumiWorkdir;
let stack: Stack;
let before: Record<string, unknown>;
const ips = { red: "192.168.15.1", blue: "192.168.15.2", gateway: "192.168.15.5" };

beforeAll(async () => {
  requirePulumiCli();
  lab = await TestLab.create(2);
  work = PulumiWorkdir.create("e2e-python-bridge-lab");
  const [target] = lab.hosts;
  let dir: string;
  ({ stack, dir } = await projectStack(work, "python-bridge-lab", {
    host: { value: target.address },
    hostKey: { value: target.hostKey },
    sshKey: { value: lab.clientKey, secret: true },
  }));
  // The example names the checkout (../../): the plugin is reached through the workdir's link, and the SDK
  // is installed from a copy (pip builds a local package in its own folder).
  const sdk = join(work.dir, "sdk-python");
  cpSync(join(REPO_ROOT, "sdk", "python"), sdk, { recursive: true });
  const requirements = join(dir, "requirements.txt");
  writeFileSync(requirements, readFileSync(requirements, "utf8").replace("../../sdk/python", sdk));
  const manifest = join(dir, "Pulumi.yaml");
  writeFileSync(manifest, readFileSync(manifest, "utf8").replace("path: ../../bin", "path: ../node_modules/pulumi-netns/bin"));
  before = hostSnapshot(target);
});

afterAll(() => {
  lab?.destroy();
  work?.remove();
});

test("a Python program builds the bridge lab on the native provider, and it carries real traffic", async () => {
  const up = await stack.up();
  // 13 resources, the stack and the explicit provider.
  expect(changes(up.summary.resourceChanges)).toEqual({ create: 15 });
  expect(up.outputs.webForward.value).toBe("tcp 80 -> 192.168.15.2:80");
  expect(await proveBridgeLab(lab.hosts[0], lab.hosts[1], ips)).toHaveLength(5);
  expect(changes((await stack.preview()).changeSummary)).toEqual({});
});

test("refresh reports a drift the program does not list and up repairs it", async () => {
  lab.hosts[0].sh(["ip", "link", "set", "veth-blue-br", "nomaster"]);
  expect(changes((await stack.refresh()).summary.resourceChanges)).toEqual({ update: 1 });
  expect(changes((await stack.up()).summary.resourceChanges)).toEqual({ update: 1 });
  expect(lab.hosts[0].sh(["ip", "-j", "link", "show", "veth-blue-br"])).toContain('"master":"v-net-0"');
  expect(changes((await stack.preview()).changeSummary)).toEqual({});
  expect(await proveBridgeLab(lab.hosts[0], lab.hosts[1], ips)).toHaveLength(5);
});

test("state: a resource's own properties under 1 KB (the rule kinds' list of rules aside), no connection", async () => {
  const resources = (await stack.exportStack()).deployment.resources as { type: string; inputs: object; outputs: object }[];
  const kinds = resources.filter((r) => r.type.startsWith("netns:index:"));
  expect(kinds).toHaveLength(13);
  // The engine adds its URN, provider reference, times and the Python program's stack trace (about 1.7 KB).
  const own = (r: (typeof kinds)[number]) => JSON.stringify({ inputs: r.inputs, outputs: { ...r.outputs, rules: undefined } }).length;
  expect(kinds.map((r) => ({ type: r.type, size: own(r) })).filter(({ size }) => size >= 1024)).toEqual([]);
  expect(kinds.filter((r) => /connection|__provider/.test(JSON.stringify(r)))).toEqual([]);
});

test("the state files hold no private key, and destroy leaves the host as it was", async () => {
  const stateFiles = stateText(work);
  expect(stateFiles).toContain("netns:index:Veth");
  expect(stateFiles).not.toContain("PRIVATE KEY");
  expect(changes((await stack.destroy()).summary.resourceChanges)).toEqual({ delete: 15 });
  expect(hostSnapshot(lab.hosts[0])).toEqual(before);
});
