/**
 * examples/two-paths through the real Pulumi CLI on two throwaway hosts: a Lab that runs a web server
 * (a Service) and declares what must be reachable (its checks). A service killed by hand is reported by
 * refresh and started again by up; a port blocked by hand fails the check, naming both ends; a pulled
 * cable moves the client's traffic to the other router, a cut-off client fails `up`, and plugging the
 * cables back in makes it pass; destroy leaves no process, log or pid file. The tests run in order on one stack.
 */
import type { Stack } from "@pulumi/pulumi/automation";
import { hostSnapshot } from "../harness/hostSnapshot";
import { PulumiWorkdir, requirePulumiCli } from "../harness/pulumiWorkdir";
import { TestHost, TestLab } from "../harness/throwawayHosts";
import { SERVICES_ROOT } from "../../provider/kinds/service";
import { changes, projectStack, stepLog, stopwatch, twoHostConfig } from "../harness/e2e";
import { running } from "../harness/testHost";

jest.setTimeout(600_000);

let lab: TestLab;
let work: PulumiWorkdir;
let stack: Stack;
let a: TestHost;
let b: TestHost;
let before: Record<string, unknown>[];
let serverAddress: string;
const { lines: timings, timed } = stopwatch();

const PID_FILE = `${SERVICES_ROOT}/netns/server/web/pid`;
const webPid = () => b.sh(["cat", PID_FILE]).split(" ")[0];
const supervisorPid = () => b.sh(["cat", `${SERVICES_ROOT}/netns/server/web/supervisor`]).split(" ")[0];
/** The page the client gets from the server's web service, or "" when it gets none. */
const fetchFromClient = () =>
  a
    .sh(
      ["ip", "netns", "exec", "client", "curl", "-s", "-m", "3", "-o", "/dev/null", "-w", "%{http_code}", `http://${serverAddress}:8080/`],
      { allowFailure: true },
    )
    .trim();
/** The client's way to the server: "dev eth0" (through r1) or "dev eth1" (through r2). */
const clientRoute = () => a.sh(["ip", "-n", "client", "route", "get", serverAddress]).match(/dev (\S+)/)?.[1];

beforeAll(async () => {
  requirePulumiCli();
  lab = await TestLab.create(2);
  [a, b] = lab.hosts;
  work = PulumiWorkdir.create("e2e-two-paths");
  ({ stack } = await projectStack(work, "two-paths", twoHostConfig(lab)));
  before = [hostSnapshot(a), hostSnapshot(b)];
});

afterAll(() => {
  if (timings.length > 0) console.log(`two-paths wall times:\n  ${timings.join("\n  ")}`);
  lab?.destroy();
  work?.remove();
});

test("up starts the web service once the lab is cabled, and the checks pass: the client goes through r1", async () => {
  const up = await timed("up", () => stack.up());
  // Stack, Lab, allocation, 4 nodes (each one LabNode: namespace, cables, addresses, routes, forwarding), the
  // LAN over two hosts (a LabSegment per host: its bridge and VXLAN port), the service, 4 checks.
  expect(changes(up.summary.resourceChanges)).toEqual({ create: 14 });
  serverAddress = up.outputs.addresses.value.server.eth0[0].split("/")[0];
  expect(fetchFromClient()).toBe("200");
  expect(clientRoute()).toBe("eth0");
  expect(changes((await stack.preview()).changeSummary)).toEqual({});
  expect(changes((await timed("refresh", () => stack.refresh())).summary.resourceChanges)).toEqual({});
});

test("the service killed by hand: refresh reports it, up starts it again; a process its supervisor restarted is reported too", async () => {
  const pid = webPid();
  // The whole process group: the supervisor and the web server.
  b.sh(["kill", "-KILL", "--", `-${supervisorPid()}`]);
  expect(fetchFromClient()).not.toBe("200");
  // The client's check saw it too: nothing listens on server:8080 any more.
  const dead = ["update Check lab/client/expect", "update Service lab/server/service/web"];
  const refreshed = stepLog();
  await stack.refresh({ onEvent: refreshed.onEvent });
  expect(refreshed.steps.sort()).toEqual(dead);
  const up = stepLog();
  await stack.up({ onEvent: up.onEvent });
  expect(up.steps.sort()).toEqual(dead);
  expect(webPid()).not.toBe(pid);
  expect(fetchFromClient()).toBe("200");

  // Only the web server: its supervisor starts it again (restart: on-failure), as another process.
  const second = webPid();
  b.sh(["kill", "-KILL", second]);
  for (let i = 0; i < 50 && webPid() === second; i++) await new Promise((r) => setTimeout(r, 100));
  const again = stepLog();
  await stack.refresh({ onEvent: again.onEvent });
  expect(again.steps).toEqual(["update Service lab/server/service/web"]);
  // The next up takes note (it has nothing to start), and then all is quiet.
  const noted = stepLog();
  await stack.up({ onEvent: noted.onEvent });
  expect(noted.steps).toEqual(["update Service lab/server/service/web"]);
  expect(webPid()).not.toBe(second);
  expect(changes((await stack.preview()).changeSummary)).toEqual({});
  expect(changes((await stack.refresh()).summary.resourceChanges)).toEqual({});
});

test("the web port blocked by hand: refresh sees it, and up fails naming both ends; unblocked, up passes", async () => {
  const rule = ["-p", "tcp", "--dport", "8080", "-j", "DROP"];
  b.sh(["ip", "netns", "exec", "server", "iptables", "-I", "INPUT", ...rule]);
  try {
    await expect(stack.refresh({ expectNoChanges: true })).rejects.toThrow();
    await expect(stack.up()).rejects.toThrow(
      new RegExp(
        `check from node client \\(namespace "client" on root@${a.address.replace(/\./g, "\\.")}:22\\) failed:\\s+` +
          `to server:8080 \\(tcp ${serverAddress.replace(/\./g, "\\.")}:8080\\): expected reachable, seen unreachable`,
      ),
    );
  } finally {
    b.sh(["ip", "netns", "exec", "server", "iptables", "-D", "INPUT", ...rule]);
  }
  const up = stepLog();
  await stack.up({ onEvent: up.onEvent });
  expect(up.steps).toEqual(["update Check lab/client/expect"]);
  expect(changes((await stack.preview()).changeSummary)).toEqual({});
});

test("a pulled cable moves the client to r2 in place; a cut-off client fails up; plugged back in, it passes", async () => {
  await stack.setConfig("down", { value: "r1" });
  const pulled = stepLog();
  await timed("up with a cable pulled", () => stack.up({ onEvent: pulled.onEvent }));
  const checks = ["client", "r1", "r2", "server"].map((n) => `update Check lab/${n}/expect`);
  // Both ends of the cable, in place; the route through it, which the kernel dropped, kept in the client's state.
  expect(pulled.steps.sort()).toEqual(["update LabNode lab/client", "update LabNode lab/r1", ...checks].sort());
  expect(clientRoute()).toBe("eth1");
  expect(fetchFromClient()).toBe("200");
  expect(changes((await stack.preview()).changeSummary)).toEqual({});
  expect(changes((await stack.refresh()).summary.resourceChanges)).toEqual({});

  await stack.setConfig("down", { value: "both" });
  await expect(stack.up()).rejects.toThrow(
    /check from node client .* failed:[\s\S]*to server:8080 \(tcp [\d.]+:8080\): expected reachable, seen unreachable/,
  );

  await stack.setConfig("down", { value: "" });
  const plugged = stepLog();
  await stack.up({ onEvent: plugged.onEvent });
  // Everything in place, also after the failed up: the routes the kernel dropped are put back.
  expect(plugged.steps.sort()).toEqual(["update LabNode lab/client", "update LabNode lab/r1", "update LabNode lab/r2", ...checks].sort());
  expect(clientRoute()).toBe("eth0");
  expect(fetchFromClient()).toBe("200");
  expect(changes((await stack.preview()).changeSummary)).toEqual({});
});

test("destroy stops the service and leaves both hosts as they were: no process, log or pid file", async () => {
  const pid = webPid();
  await timed("destroy", () => stack.destroy());
  expect(running(b, pid)).toBe(false);
  expect([hostSnapshot(a), hostSnapshot(b)]).toEqual(before);
});
