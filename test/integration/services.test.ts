/**
 * Service and Check on a real host: a supervised process and the reachability declared of it, through
 * the provider as the engine drives it; what is done by hand (a kill, a blocked port) is what refresh sees.
 */
import { SERVICES_ROOT } from "../../provider/kinds/service";
import type { TestHost } from "../harness/throwawayHosts";
import { PLAIN_USER } from "../harness/throwawayHosts";
import { engine, recorder } from "../harness/engine";
import { running, useTestHost } from "../harness/testHost";

let host: TestHost;
let connection: Record<string, unknown>;
useTestHost((h) => {
  host = h;
  connection = h.connection();
});

const namespace = engine("Namespace");
const service = engine("Service");
const check = engine("Check");
const made = recorder();
afterEach(() => made.destroy());

const ns = "svc";
const inNs = (...argv: string[]) => host.sh(["ip", "netns", "exec", ns, ...argv], { allowFailure: true });
const alive = (pid: unknown) => running(host, pid);
const pythonListening = ["python3", "-m", "http.server", "8080", "--bind", "127.0.0.1"];
const until = async (what: string, ok: () => boolean, seconds = 10) => {
  const end = Date.now() + seconds * 1000;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

test("a service starts ready, refresh sees it killed, update starts it again, destroy leaves nothing", async () => {
  await made.create(namespace, { connection, name: ns });
  const web = await made.create(service, {
    connection,
    name: "web",
    namespace: ns,
    command: pythonListening,
    restart: "never",
    readiness: { tcpPort: 8080 },
  });
  expect(web.outs).toMatchObject({ running: true, logPath: `${SERVICES_ROOT}/netns/${ns}/web/log` });
  // Ready means listening: no wait was needed before this.
  expect(inNs("ss", "-Hltn", "sport = :8080")).toMatch(/127\.0\.0\.1:8080/);
  expect(await service.read(web.id, web.outs)).toEqual({ id: web.id, props: web.outs });

  host.sh(["kill", "-KILL", String(web.outs.pid)]);
  await until(
    "the supervisor to see the kill",
    () => host.sh(["cat", `${SERVICES_ROOT}/netns/${ns}/web/exit`], { allowFailure: true }).trim() === "137",
  );
  const refreshed = await service.read(web.id, web.outs);
  expect(refreshed.props.running).toBe(false);
  expect(await service.diff(web.id, refreshed.props, web.news)).toMatchObject({ changes: true, replaces: [] });
  const restarted = await service.update(web.id, refreshed.props, web.news);
  expect(restarted.running).toBe(true);
  expect(restarted.pid).not.toBe(web.outs.pid);
  expect(alive(restarted.pid)).toBe(true);
  expect(await service.diff(web.id, restarted, web.news)).toMatchObject({ changes: false });

  // Its supervisor killed alone: the command runs on unsupervised, which is not running as asked; update
  // stops it (its group, whose leader is gone) and starts it again under a new supervisor.
  const supervisor = host.sh(["cat", `${SERVICES_ROOT}/netns/${ns}/web/supervisor`]).split(" ")[0];
  host.sh(["kill", "-KILL", supervisor]);
  const orphaned = await service.read(web.id, restarted);
  expect(orphaned.props).toMatchObject({ pid: restarted.pid, running: false });
  expect(alive(restarted.pid)).toBe(true);
  const again = await service.update(web.id, orphaned.props, web.news);
  expect(again.running).toBe(true);
  expect(alive(restarted.pid)).toBe(false);

  await service.delete(web.id, again);
  expect(alive(again.pid)).toBe(false);
  expect(
    host.sh(["sh", "-c", `ls -A ${SERVICES_ROOT}/netns/${ns}; ls -A /run/pulumi-netns/owner/service/netns/${ns} 2>/dev/null; true`]).trim(),
  ).toBe("");
  expect(host.sh(["pgrep", "-f", "http.server 8080"], { allowFailure: true }).trim()).toBe("");
  // Gone already: a second delete succeeds, and read says gone.
  await service.delete(web.id, again);
  expect(await service.read(web.id, again)).toEqual({ id: "", props: {} });
});

test("restart on failure, the log cap, user, environment and working directory", async () => {
  await made.create(namespace, { connection, name: ns });
  const chatty = await made.create(service, {
    connection,
    name: "chatty",
    namespace: ns,
    shell: true,
    command: ['echo "$GREETING from $(pwd) as $(id -un)"; while :; do echo 0123456789012345678901234567890123456789; sleep 0.005; done'],
    environment: { GREETING: "hello" },
    workingDirectory: "/tmp",
    user: PLAIN_USER,
    logMaxBytes: 4096,
  });
  const log = chatty.outs.logPath as string;
  expect(host.sh(["head", "-n", "1", log]).trim()).toBe(`hello from /tmp as ${PLAIN_USER}`);
  expect(host.sh(["sh", "-c", `grep '^Uid:' /proc/${chatty.outs.pid}/status`])).toContain("4243");
  await until("the log to be cut", () => host.sh(["sh", "-c", `[ -e ${log}.1 ] && echo cut || true`]).trim() === "cut");
  await new Promise((r) => setTimeout(r, 3000));
  // Cut every 2 s: at most the cap plus 2 s of output (about 16 KB here), never all of it.
  expect(Number(host.sh(["stat", "-c", "%s", log]))).toBeLessThan(64 * 1024);
  expect(Number(host.sh(["stat", "-c", "%s", `${log}.1`]))).toBeLessThan(64 * 1024);

  // on-failure is the default: a process killed by a signal comes back as another process.
  host.sh(["kill", "-TERM", String(chatty.outs.pid)]);
  await until("the restart", () => {
    const read = host.sh(["cat", `${SERVICES_ROOT}/netns/${ns}/chatty/pid`], { allowFailure: true }).split(" ")[0];
    return read !== "" && read !== String(chatty.outs.pid);
  });
  const after = (await service.read(chatty.id, chatty.outs)).props;
  expect(after.running).toBe(true);
  expect(after.pid).not.toBe(chatty.outs.pid);
  // Refresh reports the replaced process; the next up takes note of it without a restart.
  expect(after.replaced).toBe(true);
  expect(await service.diff(chatty.id, after, chatty.news)).toMatchObject({ changes: true, replaces: [] });
  const noted = await service.update(chatty.id, after, chatty.news);
  expect(noted).toMatchObject({ pid: after.pid, running: true });
  expect(noted.replaced).toBeUndefined();
  expect(await service.diff(chatty.id, noted, chatty.news)).toMatchObject({ changes: false });
});

test("a service that never gets ready fails create with its log, and leaves nothing running", async () => {
  await made.create(namespace, { connection, name: ns });
  await expect(
    service.create({
      connection,
      name: "late",
      namespace: ns,
      command: ["sleep", "1001"],
      readiness: { tcpPort: 9999, timeoutSeconds: 2 },
    }),
  ).rejects.toThrow(/service "late" in namespace "svc" was not ready \(TCP port 9999 listening\) within 2 s/);
  await expect(
    service.create({
      connection,
      name: "crash",
      namespace: ns,
      shell: true,
      command: ["echo boom; exit 3"],
      restart: "never",
      readiness: { tcpPort: 9998, timeoutSeconds: 5 },
    }),
  ).rejects.toThrow(/service "crash" in namespace "svc" stopped before it was ready[\s\S]*boom/);
  expect(host.sh(["pgrep", "-f", "sleep 1001"], { allowFailure: true }).trim()).toBe("");
  expect(host.sh(["sh", "-c", `ls -A ${SERVICES_ROOT}/netns/${ns} 2>/dev/null; true`]).trim()).toBe("");
});

test("a check holds or fails naming both ends; refresh sees a blocked port; udp and icmp", async () => {
  await made.create(namespace, { connection, name: ns });
  await made.create(service, { connection, name: "web", namespace: ns, command: pythonListening, readiness: { tcpPort: 8080 } });
  const echo = [
    "python3",
    "-c",
    "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('127.0.0.1',5353))\nwhile True:\n d,a=s.recvfrom(100); s.sendto(d,a)",
  ];
  await made.create(service, {
    connection,
    name: "echo",
    namespace: ns,
    command: echo,
    readiness: { command: ["sh", "-c", "ss -Hlun 'sport = :5353' | grep -q ."] },
  });

  const targets = [
    { address: "127.0.0.1", protocol: "tcp", port: 8080, label: "web" },
    { address: "127.0.0.1", protocol: "udp", port: 5353 },
    { address: "127.0.0.1", protocol: "udp", port: 5354, expect: "unreachable" },
    { address: "127.0.0.1", maxRttMs: 100, maxLossPercent: 0 },
    // No route in a namespace with only lo: refused inside, no packet leaves.
    { address: "10.255.0.1", expect: "unreachable" },
  ];
  const works = await made.create(check, { connection, namespace: ns, from: "node a", targets });
  expect(works.outs.observed).toEqual({
    "tcp 127.0.0.1:8080": "reachable",
    "udp 127.0.0.1:5353": "reachable",
    "udp 127.0.0.1:5354": "unreachable",
    "icmp 127.0.0.1": "reachable",
    "icmp 10.255.0.1": "unreachable",
  });
  expect((await check.read(works.id, works.outs)).props).toEqual(works.outs);

  await expect(
    check.create({ connection, namespace: ns, targets: [{ address: "127.0.0.1", protocol: "tcp", port: 8081 }] }),
  ).rejects.toThrow(
    /check from namespace "svc" on .* failed:\n {2}to tcp 127\.0\.0\.1:8081: expected reachable, seen unreachable \(0 of 3 attempts got through; Connection refused\)/,
  );

  inNs("iptables", "-I", "INPUT", "-p", "tcp", "--dport", "8080", "-j", "DROP");
  try {
    const refreshed = await check.read(works.id, works.outs);
    expect((refreshed.props.observed as Record<string, string>)["tcp 127.0.0.1:8080"]).toBe("unreachable");
    expect(await check.diff(works.id, refreshed.props, works.news)).toMatchObject({ changes: true });
    await expect(check.update(works.id, refreshed.props, works.news)).rejects.toThrow(
      /check from node a \(namespace "svc" on .*\) failed:\n {2}to web \(tcp 127\.0\.0\.1:8080\): expected reachable, seen unreachable \(0 of 3 attempts got through; no answer within 2 s\)/,
    );
  } finally {
    inNs("iptables", "-D", "INPUT", "-p", "tcp", "--dport", "8080", "-j", "DROP");
  }
  const again = await check.read(works.id, works.outs);
  expect(await check.diff(works.id, again.props, works.news)).toMatchObject({ changes: false });
});
