/** Route: values in the kernel's spelling after check, and the exact commands of read, update and create. */
import { provider } from "../../provider";
import type { Argv, CommandResult, Host } from "../../provider/host";
import { routeKind } from "../../provider/kinds/route";

const connection = { host: "10.0.0.1", user: "root", privateKey: "A" };
const route = provider("Route");

async function checked(inputs: Record<string, unknown>) {
  const result = await route.check({}, { connection, ...inputs });
  expect(result.failures).toBeUndefined();
  // create and update validate the checked values again: canonicalising must be idempotent.
  expect((await route.check({}, result.inputs)).inputs).toEqual(result.inputs);
  const { connection: _, adopt: __, ...spec } = result.inputs;
  return spec;
}

const reasons = async (inputs: Record<string, unknown>) =>
  ((await route.check({}, { connection, ...inputs })).failures ?? []).map((f) => `${f.property}: ${f.reason}`);

test("check spells every value as the kernel reads it back", async () => {
  expect(await checked({ destination: "0.0.0.0/0", via: "10.0.0.1" })).toEqual({ destination: "default", family: 4, via: "10.0.0.1" });
  expect(await checked({ destination: "::/0", device: "eth0" })).toEqual({ destination: "default", family: 6, device: "eth0" });
  expect(await checked({ destination: "0:0::0/0", device: "eth0" })).toMatchObject({ destination: "default", family: 6 });
  expect(await checked({ destination: "default", via: "FE80::1", device: "eth0" })).toEqual({
    destination: "default",
    family: 6,
    via: "fe80::1",
    device: "eth0",
  });
  expect(await checked({ destination: "2001:DB8:0::/48", device: "eth0", source: "2001:DB8::0:1", metric: 0 })).toEqual({
    destination: "2001:db8::/48",
    family: 6,
    device: "eth0",
    source: "2001:db8::1",
    metric: 1024,
  });
  expect(await checked({ destination: "10.0.0.0/8", device: "eth0", metric: 0 })).toEqual({
    destination: "10.0.0.0/8",
    family: 4,
    device: "eth0",
    metric: 0,
  });
  expect(await checked({ destination: "default", family: 6, device: "eth0" })).toEqual({
    destination: "default",
    family: 6,
    device: "eth0",
  });
  expect(await checked({ destination: "default", device: "eth0" })).toEqual({ destination: "default", family: 4, device: "eth0" });
});

test("values the kernel would store differently, or that contradict each other, are refused by name", async () => {
  expect(await reasons({ destination: "10.0.0.1/24", device: "eth0" })).toEqual(["destination: host bits must be zero: use 10.0.0.0/24"]);
  expect(await reasons({ destination: "2001:DB8::1/64", device: "eth0" })).toEqual([
    "destination: host bits must be zero: use 2001:db8::/64",
  ]);
  expect(await reasons({ destination: "default", family: 4, via: "fe80::1" })).toEqual([
    "family: the gateway fe80::1 is IPv6: set family 6 or leave it unset",
  ]);
  expect(await reasons({ destination: "::/0", family: 4, device: "eth0" })).toEqual([
    "family: the destination ::/0 is IPv6: set family 6 or leave it unset",
  ]);
  expect(await reasons({ destination: "default", family: 5, device: "eth0" })).toEqual([expect.stringMatching(/^family: /)]);
  expect(await reasons({ destination: "default", via: "10.0.0.1", source: "2001:db8::1" })).toEqual([
    "source: the source address and the route must be the same IP family",
  ]);
});

test("only destination, family and namespace replace; gateway, device, source and metric update in place", async () => {
  const inputs = { connection, destination: "default", family: 4, via: "10.0.0.1", device: "eth0", metric: 0 };
  const olds = { ...inputs, setProperties: ["destination", "family", "via", "device", "metric"] };
  const diff = (change: Record<string, unknown>) => route.diff("/default/0", olds, { ...inputs, ...change });
  for (const change of [{ via: "10.0.0.2" }, { device: "eth1" }, { source: "10.0.0.5" }, { metric: 5 }]) {
    expect(await diff(change)).toMatchObject({ changes: true, replaces: [] });
  }
  expect(await diff({ destination: "10.0.0.0/8" })).toMatchObject({ replaces: ["destination"] });
  expect(await diff({ family: 6, via: "fe80::1" })).toMatchObject({ replaces: ["family"] });
  expect(await diff({ namespace: "red" })).toMatchObject({ replaces: ["namespace"] });
});

/** A host that answers `ip route show` with the routes it holds and records every command. */
function fakeHost(routes: object[]) {
  const commands: Argv[] = [];
  const host: Host = {
    label: "fake",
    async run(argv: Argv): Promise<CommandResult> {
      commands.push(argv);
      const stdout = argv.includes("show") ? JSON.stringify(routes) : "";
      return { command: argv.join(" "), exitCode: 0, stdout, stderr: "", durationMs: 1 };
    },
  };
  return { host, commands };
}

test("read asks for exactly the stored destination, in the family and namespace of the spec", async () => {
  const { host, commands } = fakeHost([{ dst: "default", gateway: "fe80::1", dev: "eth0", metric: 1024 }]);
  const olds = { connection, destination: "default", family: 6, device: "eth0", namespace: "red", metric: 1024 };
  expect(await routeKind.read(host, "red/default/1024", olds)).toEqual({
    family: 6,
    via: "fe80::1",
    device: "eth0",
    source: undefined,
    metric: 1024,
  });
  expect(commands).toEqual([["ip", "-n", "red", "-6", "-j", "route", "show", "exact", "default", "table", "main"]]);
});

test("update replaces the route in one step; a new metric is added before the old one goes", async () => {
  const olds = { connection, destination: "10.9.0.0/16", family: 4, via: "10.0.0.1", device: "eth0", metric: 5 };
  const sameMetric = fakeHost([{ dst: "10.9.0.0/16", gateway: "10.0.0.2", dev: "eth0", metric: 5 }]);
  const news = { destination: "10.9.0.0/16", family: 4 as const, via: "10.0.0.2", metric: 5 };
  expect(await routeKind.update(sameMetric.host, "/10.9.0.0/16/5", olds, news)).toMatchObject({ via: "10.0.0.2", metric: 5 });
  expect(sameMetric.commands).toEqual([
    ["ip", "-4", "route", "replace", "10.9.0.0/16", "via", "10.0.0.2", "metric", "5"],
    ["ip", "-4", "-j", "route", "show", "exact", "10.9.0.0/16", "table", "main"],
  ]);

  // Unset means the kernel's default: metric 0 here.
  const newMetric = fakeHost([{ dst: "10.9.0.0/16", dev: "eth1" }]);
  await routeKind.update(newMetric.host, "/10.9.0.0/16/5", olds, { destination: "10.9.0.0/16", family: 4, device: "eth1" });
  expect(newMetric.commands).toEqual([
    ["ip", "-4", "route", "replace", "10.9.0.0/16", "dev", "eth1"],
    ["ip", "-4", "route", "del", "10.9.0.0/16", "metric", "5"],
    ["ip", "-4", "-j", "route", "show", "exact", "10.9.0.0/16", "table", "main"],
  ]);
});

test("a created route that cannot be read back is removed again", async () => {
  const { host, commands } = fakeHost([]);
  const spec = { destination: "10.9.0.0/16", family: 4 as const, device: "eth0" };
  await expect(routeKind.create(host, spec, false)).rejects.toThrow(/cannot be read back/);
  expect(commands.filter((argv) => !argv.includes("show"))).toEqual([
    ["ip", "-4", "route", "add", "10.9.0.0/16", "dev", "eth0"],
    ["ip", "-4", "route", "del", "10.9.0.0/16", "dev", "eth0"],
  ]);
});
