/**
 * A cable set down on a real kernel: both ends administratively down drop the routes through them and
 * their IPv6 addresses (IPv4 ones stay); Route and Address `suspended` follow that in place, and put them
 * back once the cable is up again.
 */
import type { TestHost } from "../harness/throwawayHosts";
import { engine, recorder } from "../harness/engine";
import { useTestHost } from "../harness/testHost";

let host: TestHost;
let connection: Record<string, unknown>;
useTestHost((h) => {
  host = h;
  connection = h.connection();
});

const namespace = engine("Namespace");
const veth = engine("Veth");
const address = engine("Address");
const route = engine("Route");
const made = recorder();
afterEach(() => made.destroy());

const inA = (...argv: string[]) => host.sh(["ip", "-n", "ca", ...argv]);

test("down, suspended, up, put back: all in place, and read agrees at each step", async () => {
  await made.create(namespace, { connection, name: "ca" });
  await made.create(namespace, { connection, name: "cb" });
  const cable = { connection, name: "eth0", namespace: "ca", peer: { name: "eth0", namespace: "cb" } };
  const v = await made.create(veth, cable);
  const v4 = await made.create(address, { connection, namespace: "ca", device: "eth0", address: "10.77.0.1/30" });
  const v6 = await made.create(address, { connection, namespace: "ca", device: "eth0", address: "fd00:77::1/64" });
  await made.create(address, { connection, namespace: "cb", device: "eth0", address: "10.77.0.2/30" });
  const r = await made.create(route, { connection, namespace: "ca", destination: "10.78.0.0/16", via: "10.77.0.2", device: "eth0" });
  expect(inA("route", "show", "10.78.0.0/16")).toContain("via 10.77.0.2");

  const downed = await veth.update(v.id, v.outs, { ...cable, up: false, peer: { ...cable.peer, up: false } });
  // What the kernel did: the route and the IPv6 address are gone, the IPv4 address stays.
  expect(inA("route", "show", "10.78.0.0/16")).toBe("");
  expect(inA("addr", "show", "dev", "eth0")).not.toContain("fd00:77::1");
  expect(inA("addr", "show", "dev", "eth0")).toContain("10.77.0.1/30");
  expect(await route.read(r.id, r.outs)).toEqual({ id: "", props: {} });

  const rSuspended = await route.update(r.id, r.outs, { ...r.news, suspended: true });
  const v6Suspended = await address.update(v6.id, v6.outs, { ...v6.news, suspended: true });
  expect(await route.read(r.id, rSuspended)).toEqual({ id: r.id, props: rSuspended });
  expect(await address.read(v6.id, v6Suspended)).toEqual({ id: v6.id, props: v6Suspended });
  expect(await address.read(v4.id, v4.outs)).toEqual({ id: v4.id, props: v4.outs });
  expect(host.sh(["sh", "-c", "ls /run/pulumi-netns/owner/route/netns/ca 2>/dev/null; true"]).trim()).toBe("");

  await veth.update(v.id, downed, cable);
  // Unsetting `suspended` is a change (the program stopped setting it): it puts both back.
  expect(await route.diff(r.id, rSuspended, r.news)).toMatchObject({ changes: true, replaces: [] });
  const rBack = await route.update(r.id, rSuspended, r.news);
  await address.update(v6.id, v6Suspended, v6.news);
  expect(inA("route", "show", "10.78.0.0/16")).toContain("via 10.77.0.2");
  expect(inA("addr", "show", "dev", "eth0")).toContain("fd00:77::1/64");
  expect(await route.read(r.id, rBack)).toEqual({ id: r.id, props: rBack });
  expect(host.sh(["ip", "netns", "exec", "ca", "ping", "-c", "1", "-W", "2", "10.77.0.2"])).toContain(" 1 received");
  await route.delete(r.id, rBack);
  expect(inA("route", "show", "10.78.0.0/16")).toBe("");
});
