/**
 * The Lab as a multi-language component: a program registers `netns:index:Lab` as a remote component
 * (what the generated Python SDK and a YAML program do) and the native provider builds it (construct),
 * its children the native resources on one Provider per host. Through the real CLI on two throwaway
 * hosts: up (the checks prove all pairs and a service reached), refresh and preview empty, no private key
 * in the state files, destroy leaving both hosts as they were.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { hostSnapshot } from "../../scripts/hostSnapshot";
import { PulumiWorkdir, REPO_ROOT, requirePulumiCli } from "../../scripts/pulumiWorkdir";
import { TestLab } from "../../scripts/throwawayHosts";
import { changes, projectStack, twoHostConfig } from "../harness/e2e";

jest.setTimeout(600_000);

let lab: TestLab;
let work: PulumiWorkdir;

beforeAll(async () => {
  requirePulumiCli();
  lab = await TestLab.create(2);
  work = PulumiWorkdir.create("e2e-remote-lab");
});

afterAll(() => {
  lab?.destroy();
  work?.remove();
});

test("a Lab built by the native provider's construct comes up, checks what it declares, refreshes clean and goes away", async () => {
  const [east, west] = lab.hosts;
  const before = [hostSnapshot(east), hostSnapshot(west)];
  const { stack } = await projectStack(work, "remote-lab", twoHostConfig(lab), join(REPO_ROOT, "test", "e2e", "programs", "remote-lab"));
  const up = await stack.up();
  const types = (await stack.exportStack()).deployment.resources.map((r: { type: string }) => r.type);
  const count = (type: string) => types.filter((t: string) => t === type).length;
  // The stack, the default provider (no host: unused), the Lab, its two providers and allocation, three
  // nodes, the office bridge, the link's bridge and tunnel end on each host, one service, three checks.
  expect({
    Lab: count("netns:index:Lab"),
    Provider: count("pulumi:providers:netns"),
    LabNode: count("netns:index:LabNode"),
    Bridge: count("netns:index:Bridge"),
    Vxlan: count("netns:index:Vxlan"),
    Service: count("netns:index:Service"),
    Check: count("netns:index:Check"),
  }).toEqual({ Lab: 1, Provider: 3, LabNode: 3, Bridge: 3, Vxlan: 2, Service: 1, Check: 3 });
  // The engine's summary does not count default providers.
  expect(changes(up.summary.resourceChanges)).toEqual({ create: types.length - 1 });
  expect(Object.keys(up.outputs.addresses.value).sort()).toEqual(["gw", "pc", "web"]);
  expect(Object.keys(up.outputs.vnis.value)).toHaveLength(1);
  const web = up.outputs.addresses.value.web.eth0[0].split("/")[0];
  expect(east.sh(["ip", "netns", "exec", "pc", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", `http://${web}:8080/`])).toBe("200");

  expect(changes((await stack.refresh()).summary.resourceChanges)).toEqual({});
  expect(changes((await stack.preview()).changeSummary)).toEqual({});
  const stateDir = join(work.dir, "state");
  const stateFiles = readdirSync(stateDir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => readFileSync(join(entry.parentPath, entry.name), "utf8"))
    .join("\n");
  expect(stateFiles).toContain("netns:index:LabNode");
  expect(stateFiles).not.toContain("PRIVATE KEY");

  expect(changes((await stack.destroy()).summary.resourceChanges)).toEqual({ delete: types.length - 1 });
  expect([hostSnapshot(east), hostSnapshot(west)]).toEqual(before);
});
