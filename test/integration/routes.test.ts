/**
 * Route edits converge on a real host: values the kernel spells differently read back without a diff,
 * a metric change moves the route, a read stays small in a table the size of a BGP feed, and a new
 * gateway on the route that carries the SSH session itself does not cut the session off.
 */
import { ChildProcess } from "node:child_process";
import { closeAllHosts } from "../../provider";
import { connection as connectionSchema } from "../../provider/connection";
import type { CommandResult, Host } from "../../provider/host";
import { routeKind } from "../../provider/kinds/route";
import { hostFor } from "../../provider/ssh/pool";
import { TestHost, TestLab } from "../harness/throwawayHosts";
import { engine } from "../harness/engine";

let lab: TestLab;
let host: TestHost;
let connection: Record<string, unknown>;
const route = engine("Route");

beforeAll(async () => {
  lab = await TestLab.create(1, { offLinkClient: true });
  host = lab.hosts[0];
  connection = host.connection();
});

afterAll(() => {
  closeAllHosts();
  lab?.destroy();
});

/** A namespace in the test host with a veth whose end v0 has 10.66.0.2/24 and 2001:db8:66::2/64. */
function namespaceWithLink(name: string): void {
  const ip = (...argv: string[]) => host.sh(["ip", "-n", name, ...argv]);
  host.sh(["ip", "netns", "add", name]);
  ip("link", "add", "v0", "type", "veth", "peer", "name", "v1");
  ip("link", "set", "v0", "up");
  ip("link", "set", "v1", "up");
  ip("addr", "add", "10.66.0.2/24", "dev", "v0");
  ip("-6", "addr", "add", "2001:db8:66::2/64", "dev", "v0", "nodad");
}

const routesIn = (namespace: string, family: 4 | 6) => host.sh(["ip", "-n", namespace, `-${family}`, "route", "show", "table", "main"]);

describe("values the kernel spells differently", () => {
  beforeAll(() => namespaceWithLink("canon"));
  afterAll(() => host.sh(["ip", "netns", "del", "canon"], { allowFailure: true }));

  const cases: [string, Record<string, unknown>, 4 | 6, RegExp][] = [
    ["0.0.0.0/0", { destination: "0.0.0.0/0", via: "10.66.0.1" }, 4, /^default via 10\.66\.0\.1 dev v0/m],
    [
      "::/0 via an upper-case link-local gateway",
      { destination: "::/0", via: "FE80::1", device: "v0" },
      6,
      /^default via fe80::1 dev v0 metric 1024/m,
    ],
    ["an IPv6 default route by family alone", { destination: "default", family: 6, device: "v0" }, 6, /^default dev v0 metric 1024/m],
    [
      "IPv6 metric 0",
      { destination: "2001:DB8:77::/48", via: "2001:db8:66::1", metric: 0 },
      6,
      /^2001:db8:77::\/48 via 2001:db8:66::1 dev v0 metric 1024/m,
    ],
    [
      "an upper-case IPv6 source",
      { destination: "2001:db8:78::/48", device: "v0", source: "2001:DB8:66::2" },
      6,
      /^2001:db8:78::\/48 dev v0 src 2001:db8:66::2/m,
    ],
  ];

  test.each(cases)("%s: create, read back with no diff, delete", async (_name, spec, family, shown) => {
    const inputs = { connection, namespace: "canon", ...spec };
    const { id, outs } = await route.create(inputs);
    expect(routesIn("canon", family)).toMatch(shown);

    const read = await route.read(id, outs);
    expect(read.id).toBe(id);
    expect(await route.diff(id, read.props, inputs)).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });

    await route.delete(id, read.props);
    expect(routesIn("canon", family)).not.toMatch(shown);
    expect((await route.read(id, read.props)).id).toBe("");
  });

  test("a new metric is a new route: it is added before the old one goes, and read follows it", async () => {
    const inputs = { connection, namespace: "canon", destination: "10.88.0.0/16", via: "10.66.0.1", metric: 5 };
    const { id, outs } = await route.create(inputs);
    const monitor = await monitorRoutes("canon");
    const updated = await route.update(id, outs, { ...inputs, metric: 7, via: "10.66.0.9" });
    expect(updated).toMatchObject({ metric: 7, via: "10.66.0.9" });
    expect(routesIn("canon", 4)).toMatch(/^10\.88\.0\.0\/16 via 10\.66\.0\.9 dev v0 metric 7 *$/m);
    expect(routesIn("canon", 4)).not.toMatch(/metric 5/);
    const events = await monitor.stop(/^Deleted 10\.88\.0\.0\/16 .*metric 5/m);
    expect(events.indexOf("10.88.0.0/16 via 10.66.0.9 dev v0 metric 7")).toBeGreaterThanOrEqual(0);
    expect(events.indexOf("10.88.0.0/16 via 10.66.0.9 dev v0 metric 7")).toBeLessThan(events.indexOf("Deleted 10.88.0.0/16"));

    const read = await route.read(id, updated);
    expect(read).toMatchObject({ id, props: { metric: 7, via: "10.66.0.9" } });
    // Back to the kernel's default metric: unset means 0, not "leave it".
    const { metric: _, ...withoutMetric } = inputs;
    const back = await route.update(id, read.props, withoutMetric);
    expect(back.metric).toBe(0);
    expect(routesIn("canon", 4)).toMatch(/^10\.88\.0\.0\/16 via 10\.66\.0\.1 dev v0 *$/m);
    await route.delete(id, back);
    expect(routesIn("canon", 4)).not.toMatch(/10\.88\.0\.0/);
  });
});

test("reading one route in a table of 20,000 asks only for that route", async () => {
  namespaceWithLink("bgp");
  try {
    // ip -batch inside the test host: the kernel floor, not 20,000 SSH round trips.
    host.sh([
      "sh",
      "-c",
      `awk 'BEGIN { for (i = 0; i < 20000; i++) printf "route add 10.%d.%d.0/24 via 10.66.0.1\\n", 100 + i / 256, i % 256 }' | ip -n bgp -batch -`,
    ]);
    expect(routesIn("bgp", 4).split("\n").length).toBeGreaterThan(20000);
    const { id, outs } = await route.create({ connection, namespace: "bgp", destination: "10.200.0.0/16", via: "10.66.0.1", metric: 20 });

    const pooled = hostFor(connectionSchema.parse(outs.connection));
    const results: CommandResult[] = [];
    const recording: Host = {
      label: pooled.label,
      run: async (argv, options) => {
        const result = await pooled.run(argv, options);
        results.push(result);
        return result;
      },
    };
    const started = Date.now();
    expect(await routeKind.read(recording, id, outs)).toMatchObject({ via: "10.66.0.1", metric: 20 });
    const elapsed = Date.now() - started;

    expect(results).toHaveLength(1);
    expect(JSON.parse(results[0].stdout)).toHaveLength(1);
    expect(results[0].stdout.length).toBeLessThan(300);
    expect(elapsed).toBeLessThan(1000);
    await route.delete(id, outs);
  } finally {
    host.sh(["ip", "netns", "del", "bgp"], { allowFailure: true });
  }
});

// Last: should it fail, the session it cuts off is gone for good.
test("a new gateway on the route carrying the SSH session: replaced in one step, the session lives on", async () => {
  const [first, second] = lab.clientGateways;
  const inputs = { connection, destination: `${lab.gateway}/32`, via: first, adopt: true };
  const { id, outs } = await route.create(inputs);
  expect(outs).toMatchObject({ via: first, device: "eth0" });

  const changed = { ...inputs, via: second };
  expect(await route.diff(id, outs, changed)).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
  const monitor = await monitorRoutes();
  const updated = await route.update(id, outs, changed);
  expect(updated).toMatchObject({ via: second });
  // The same pooled SSH connection still answers.
  expect(await route.read(id, updated)).toMatchObject({ id, props: { via: second } });
  expect(host.sh(["ip", "route", "show", `${lab.gateway}/32`])).toMatch(new RegExp(`via ${second.replace(/\./g, "\\.")} dev eth0`));

  const events = await monitor.stop(new RegExp(`via ${second.replace(/\./g, "\\.")}`));
  expect(events).not.toMatch(/^Deleted/m);
});

/**
 * `ip monitor route` inside the test host (in a namespace of it when given). Resolves once it is
 * seen to be listening; `stop` waits for an event matching `until`, then returns everything seen.
 */
async function monitorRoutes(namespace?: string) {
  const argv = namespace ? ["ip", "-n", namespace, "monitor", "route"] : ["ip", "monitor", "route"];
  const child: ChildProcess = host.spawn(argv);
  let seen = "";
  child.stdout!.on("data", (d) => (seen += d));
  const waitFor = async (pattern: RegExp, what: string) => {
    for (let i = 0; i < 100 && !pattern.test(seen); i++) await new Promise((r) => setTimeout(r, 50));
    if (!pattern.test(seen)) throw new Error(`ip monitor never showed ${what}:\n${seen}`);
  };
  // A throwaway route inside the test host proves the monitor is listening before anything happens.
  const probe = ["ip", ...(namespace ? ["-n", namespace] : []), "route", "add", "blackhole", "192.0.2.77/32"];
  host.sh(probe);
  await waitFor(/192\.0\.2\.77/, "its probe");
  host.sh(probe.map((a) => (a === "add" ? "del" : a)));
  await waitFor(/^Deleted .*192\.0\.2\.77/m, "its probe's removal");
  const start = seen.length;
  return {
    async stop(until: RegExp): Promise<string> {
      try {
        await waitFor(until, String(until));
        return seen.slice(start);
      } finally {
        child.kill();
      }
    },
  };
}
