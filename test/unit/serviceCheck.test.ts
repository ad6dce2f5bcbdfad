/** Service and Check as plain data: the argv they run and what they make of the output. */
import { parseProbes, probeArgv, seen, unmet } from "../../provider/kinds/check";
import { parseStatus, serviceArgv, startArgv, stopArgv } from "../../provider/kinds/service";
import { targetKey } from "../../provider/kindSettings";
import { shellLine } from "../../provider/shell";

test("a service's command runs in its namespace, as its user, with its environment, never through a shell unless asked", () => {
  const base = { command: ["python3", "-m", "http.server", "8080"], shell: false };
  expect(serviceArgv(base)).toEqual(["env", "--", "python3", "-m", "http.server", "8080"]);
  expect(serviceArgv({ ...base, namespace: "red", environment: { A: "x; rm -rf /", B: "" } })).toEqual([
    "ip",
    "netns",
    "exec",
    "red",
    "env",
    "--",
    "A=x; rm -rf /",
    "B=",
    "python3",
    "-m",
    "http.server",
    "8080",
  ]);
  const asUser = serviceArgv({ ...base, user: "www-data" });
  expect(asUser.slice(0, 2)).toEqual(["sh", "-c"]);
  expect(asUser.slice(3)).toEqual(["sh", "www-data", "env", "--", "python3", "-m", "http.server", "8080"]);
  expect(serviceArgv({ command: ["echo $HOME", "&&", "sleep 9"], shell: true })).toEqual([
    "env",
    "--",
    "sh",
    "-c",
    "echo $HOME && sleep 9",
  ]);
});

test("start and stop are one remote step each, the owner record with them; every value is one quoted word", () => {
  const spec = {
    name: "web",
    namespace: "red",
    command: ["printf", "%s\n", "it's"],
    shell: false,
    restart: "always" as const,
    logMaxBytes: 4096,
    stopTimeoutSeconds: 3,
  };
  const start = startArgv(spec, "0123456789abcdef@p/s");
  expect(start.slice(0, 2)).toEqual(["sh", "-c"]);
  expect(start[2]).toContain("/run/pulumi-netns/owner/service/netns/red/web pulumi-netns:0123456789abcdef@p/s");
  expect(start[2]).toContain("/run/pulumi-netns-services/netns/red/web always 4096 '' ip netns exec red env -- printf '%s\n' 'it'\\''s'");
  const stop = stopArgv("red", "web", 3, "0123456789abcdef@p/s");
  expect(shellLine(stop)).toMatch(
    /\/run\/pulumi-netns-services\/netns\/red\/web 3 && rm -f \/run\/pulumi-netns\/owner\/service\/netns\/red\/web'$/,
  );
  // Without an owner (a start after a stop of an earlier run) the record is not touched.
  expect(stopArgv(undefined, "web", 3, undefined)).toEqual([
    "sh",
    "-c",
    expect.any(String),
    "sh",
    "/run/pulumi-netns-services/host/web",
    "3",
  ]);
});

test("a service's status line", () => {
  expect(parseStatus("4242 2026-12-06T04:00:00Z true false\n")).toEqual({
    pid: 4242,
    startTime: "2026-12-06T04:00:00Z",
    running: true,
    supervised: false,
  });
  expect(() => parseStatus("")).toThrow(/unexpected service status/);
});

test("probes run side by side in the namespace, one line each; a missing line is a failure, never a pass", () => {
  const targets = [
    { address: "10.0.0.2", protocol: "icmp" as const, expect: "reachable" as const },
    { address: "fd00::2", protocol: "tcp" as const, port: 80, expect: "reachable" as const },
  ];
  const argv = probeArgv("red", targets, 3, 2);
  expect(argv.slice(0, 6)).toEqual(["ip", "netns", "exec", "red", "sh", "-c"]);
  expect(argv.slice(7)).toEqual(["sh", "3", "2", "icmp", "10.0.0.2", "0", "tcp", "fd00::2", "80"]);
  expect(parseProbes("1 2 3 - Connection refused\n0 3 3 0.061\n", 2)).toEqual([
    { ok: 3, attempts: 3, rttMs: 0.061 },
    { ok: 2, attempts: 3, reason: "Connection refused" },
  ]);
  expect(parseProbes("0 3 3 0.061\n", 2)[1]).toEqual({ ok: 0, attempts: 0, reason: "the probe did not report" });
  expect(targetKey(targets[1])).toBe("tcp [fd00::2]:80");
  expect(targetKey(targets[0])).toBe("icmp 10.0.0.2");
});

test("what was seen is stable words, and limits decide reachable", () => {
  expect(seen({ ok: 0, attempts: 3 }, {})).toBe("unreachable");
  expect(seen({ ok: 1, attempts: 3 }, {})).toBe("reachable");
  expect(seen({ ok: 2, attempts: 3 }, { maxLossPercent: 10 })).toBe("reachable with 33% loss (limit 10%)");
  expect(seen({ ok: 3, attempts: 3, rttMs: 12.5 }, { maxRttMs: 5 })).toBe("reachable in 12.5 ms on average (limit 5 ms)");
  expect(seen({ ok: 3, attempts: 3, rttMs: 1.2 }, { maxRttMs: 5, maxLossPercent: 0 })).toBe("reachable");
  const target = { address: "10.0.0.2", protocol: "icmp" as const };
  expect(
    unmet({ targets: [{ ...target, expect: "unreachable" }] }, { "icmp 10.0.0.2": "reachable with 33% loss (limit 10%)" }),
  ).toHaveLength(1);
  expect(unmet({ targets: [{ ...target, expect: "reachable" }] }, { "icmp 10.0.0.2": "reachable" })).toHaveLength(0);
});
