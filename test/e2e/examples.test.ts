/** examples/veth-pair and examples/multi-host, up and destroy with the real Pulumi CLI. */
import { join } from "node:path";
import { PulumiWorkdir, REPO_ROOT, requirePulumiCli } from "../harness/pulumiWorkdir";
import { TestLab } from "../harness/throwawayHosts";
import { changes, projectStack, twoHostConfig } from "../harness/e2e";
import { hostSnapshot } from "../harness/hostSnapshot";

jest.setTimeout(300_000);

let lab: TestLab;
let work: PulumiWorkdir;

beforeAll(async () => {
  requirePulumiCli();
  lab = await TestLab.create(2);
  work = PulumiWorkdir.create("e2e-examples");
});

afterAll(() => {
  lab?.destroy();
  work?.remove();
});

const ping = (index: number, namespace: string, target: string) =>
  lab.hosts[index].sh(["ip", "netns", "exec", namespace, "ping", "-c", "1", "-W", "2", target], { timeoutMs: 15_000 });

test("veth-pair: two namespaces talk over one cable; destroy restores the host", async () => {
  const [host] = lab.hosts;
  const before = hostSnapshot(host);
  const { stack } = await projectStack(work, "veth-pair", {
    host: { value: host.address },
    hostKey: { value: host.hostKey },
    sshKey: { value: lab.clientKey, secret: true },
  });
  expect(changes((await stack.up()).summary.resourceChanges)).toEqual({ create: 6 });
  expect(ping(0, "red", "192.168.15.2")).toContain(" 1 received");
  expect(ping(0, "blue", "192.168.15.1")).toContain(" 1 received");
  expect(changes((await stack.preview()).changeSummary)).toEqual({});
  expect(changes((await stack.destroy()).summary.resourceChanges)).toEqual({ delete: 6 });
  expect(hostSnapshot(host)).toEqual(before);
});

test("multi-host: one program builds a lab on each of two hosts; each reaches the other host through its NAT", async () => {
  const [a, b] = lab.hosts;
  const before = [hostSnapshot(a), hostSnapshot(b)];
  const { stack } = await projectStack(work, "multi-host", twoHostConfig(lab));
  const up = await stack.up();
  expect(changes(up.summary.resourceChanges)).toEqual({ create: 17 });
  expect(up.outputs.siteA.value).toBe("app 10.50.1.10 on br-lab");
  expect(ping(0, "app", b.address)).toContain(" 1 received");
  expect(ping(1, "app", a.address)).toContain(" 1 received");
  expect(changes((await stack.preview()).changeSummary)).toEqual({});
  await stack.destroy();
  expect([hostSnapshot(a), hostSnapshot(b)]).toEqual(before);
});

test("a lab of over 100 resources on one host with --parallel 32 against a stock sshd", async () => {
  const [host] = lab.hosts;
  const before = hostSnapshot(host);
  const { stack } = await projectStack(
    work,
    "scale",
    {
      host: { value: host.address },
      hostKey: { value: host.hostKey },
      sshKey: { value: lab.clientKey, secret: true },
      count: { value: "34" },
    },
    join(REPO_ROOT, "test", "e2e", "programs", "scale"),
  );
  const up = await stack.up({ parallel: 32 });
  expect(changes(up.summary.resourceChanges)).toEqual({ create: 104 });
  expect(JSON.parse(host.sh(["ip", "-j", "netns", "list"]))).toHaveLength(34);
  expect(host.sh(["ip", "-n", "ns33", "-br", "addr", "show", "eth0"])).toContain("10.60.0.34/16");
  expect(changes((await stack.refresh({ parallel: 32 })).summary.resourceChanges)).toEqual({});
  expect(changes((await stack.destroy({ parallel: 32 })).summary.resourceChanges)).toEqual({ delete: 104 });
  expect(hostSnapshot(host)).toEqual(before);
});
