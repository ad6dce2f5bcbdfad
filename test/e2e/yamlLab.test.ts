/**
 * examples/yaml-lab through the real CLI: a Pulumi YAML program whose Lab (`netns:index:Lab`) the native
 * provider builds (construct), on two throwaway hosts. Up (the Lab's checks prove all pairs and the
 * service reached), refresh and preview empty, no private key in the state files, and destroy leaving
 * both hosts as they were.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { hostSnapshot } from "../harness/hostSnapshot";
import { PulumiWorkdir, requirePulumiCli } from "../harness/pulumiWorkdir";
import { TestLab } from "../harness/throwawayHosts";
import { changes, projectStack, stateText, twoHostConfig } from "../harness/e2e";

jest.setTimeout(600_000);

let lab: TestLab;
let work: PulumiWorkdir;

beforeAll(async () => {
  requirePulumiCli();
  lab = await TestLab.create(2);
  work = PulumiWorkdir.create("e2e-yaml-lab");
});

afterAll(() => {
  lab?.destroy();
  work?.remove();
});

test("a YAML program's Lab comes up over two hosts, checks what it declares, refreshes clean and goes away", async () => {
  const [east, west] = lab.hosts;
  const before = [hostSnapshot(east), hostSnapshot(west)];
  const { stack, dir } = await projectStack(work, "yaml-lab", twoHostConfig(lab));
  const manifest = join(dir, "Pulumi.yaml");
  writeFileSync(manifest, readFileSync(manifest, "utf8").replace("path: ../../bin", "path: ../node_modules/pulumi-netns/bin"));

  const up = await stack.up();
  expect(Object.keys(up.outputs.addresses.value).sort()).toEqual(["gw", "pc", "web"]);
  const types = (await stack.exportStack()).deployment.resources.map((r: { type: string }) => r.type);
  const count = (type: string) => types.filter((t: string) => t === type).length;
  // The default provider (no host: unused) and the Lab's two; three nodes, the office bridge, the link's
  // segment part (bridge and VXLAN port) on each host, one service, a check per node.
  expect(
    ["pulumi:providers:netns", "LabNode", "LabSegment", "Service", "Check"].map((t) => count(t.includes(":") ? t : `netns:index:${t}`)),
  ).toEqual([3, 3, 3, 1, 3]);
  // The engine's summary does not count default providers.
  expect(changes(up.summary.resourceChanges)).toEqual({ create: types.length - 1 });
  const web = up.outputs.addresses.value.web.eth0[0].split("/")[0];
  expect(east.sh(["ip", "netns", "exec", "pc", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", `http://${web}:8080/`])).toBe("200");

  expect(changes((await stack.refresh()).summary.resourceChanges)).toEqual({});
  expect(changes((await stack.preview()).changeSummary)).toEqual({});
  const stateFiles = stateText(work);
  expect(stateFiles).toContain("netns:index:LabNode");
  expect(stateFiles).not.toContain("PRIVATE KEY");
  expect(changes((await stack.destroy()).summary.resourceChanges)).toEqual({ delete: types.length - 1 });
  expect([hostSnapshot(east), hostSnapshot(west)]).toEqual(before);
});
