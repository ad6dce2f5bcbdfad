/** Vxlan and Netem: exact argv, parsers on captured output, defaults and read-back rounding. */
import { asAsked, defaultLimit, netemDeleteArgv, netemReplaceArgv, parseRootQdisc } from "../../provider/kinds/netem";
import {
  defaultVxlanMtu,
  explainAddFailure,
  floodChangesArgv,
  floodShowArgv,
  parseFloodRemotes,
  parseVxlan,
  provisionalName,
  vxlanAddArgv,
  vxlanKind,
} from "../../provider/kinds/vxlan";
import { linkRenameArgv } from "../../provider/iproute";
import { scriptedHost } from "../harness/scriptedHost";

const vxlanSpec = { name: "vx0", vni: 4242, local: "198.18.0.10", remote: "198.18.0.11", dstport: 4789, device: "eth0", up: true };

test("vxlan: made from the host's namespace under the name given, placed in its own at once, dstport always given", () => {
  expect(vxlanAddArgv(vxlanSpec, "vx0")).toEqual([
    "ip", "link", "add", "name", "vx0", "type", "vxlan", "id", "4242", "local", "198.18.0.10", "remote", "198.18.0.11", "dstport", "4789", "dev", "eth0",
  ]);
  expect(vxlanAddArgv({ ...vxlanSpec, namespace: "lab", dstport: 14789 }, "pnt-vx-0a1b2c3d")).toEqual([
    "ip", "link", "add", "name", "pnt-vx-0a1b2c3d", "netns", "lab", "type", "vxlan", "id", "4242", "local", "198.18.0.10", "remote", "198.18.0.11", "dstport", "14789", "dev", "eth0",
  ]);
  expect(linkRenameArgv("lab", "pnt-vx-0a1b2c3d", "vx0")).toEqual(["ip", "-n", "lab", "link", "set", "dev", "pnt-vx-0a1b2c3d", "name", "vx0"]);
});

test("vxlan: a provisional name fits the 15-byte limit and is new each time", () => {
  const names = [provisionalName(), provisionalName()];
  for (const name of names) expect(name).toMatch(/^pnt-vx-[0-9a-f]{8}$/);
  expect(Buffer.byteLength(names[0])).toBeLessThanOrEqual(15);
  expect(names[0]).not.toBe(names[1]);
});

test("vxlan create for a namespace: when the rename fails, the provisionally named device is removed and the error names the command", async () => {
  // A device of that name appeared in the namespace since create looked: the rename is refused.
  const host = scriptedHost((argv) => {
    if (argv.includes("eth0") && argv.includes("show")) return { stdout: JSON.stringify([{ ifindex: 2, ifname: "eth0", mtu: 1500 }]) };
    if (argv.includes("show")) return { exitCode: 1, stderr: 'Device "vx0" does not exist.\n' };
    if (argv.includes("set")) return { exitCode: 2, stderr: "RTNETLINK answers: File exists\n" };
    return {};
  });
  await expect(vxlanKind.create(host, vxlanKind.inputs.parse({ connection: { host: "test", password: "x" }, ...vxlanSpec, namespace: "lab" }), false)).rejects.toThrow(
    /root@test:22: .*link set dev pnt-vx-[0-9a-f]{8} name vx0.*File exists/s,
  );
  const provisional = host.ran.find((c) => c.includes(" link add "))!.split(" ")[4];
  expect(host.ran.slice(-1)).toEqual([`ip -n lab link del dev ${provisional}`]);
});

test("vxlan with remotes: no fixed remote; one all-zero forwarding entry per remote, added before any is removed", () => {
  const { remote: _remote, ...segment } = vxlanSpec;
  expect(vxlanAddArgv({ ...segment, remotes: ["198.18.0.11", "198.18.0.12"] }, "vx0")).toEqual([
    "ip", "link", "add", "name", "vx0", "type", "vxlan", "id", "4242", "local", "198.18.0.10", "dstport", "4789", "dev", "eth0",
  ]);
  expect(floodChangesArgv("lab", "vx0", ["198.18.0.11", "198.18.0.12"], ["198.18.0.12", "198.18.0.13", "198.18.0.14"])).toEqual([
    ["bridge", "-n", "lab", "fdb", "append", "00:00:00:00:00:00", "dev", "vx0", "dst", "198.18.0.13"],
    ["bridge", "-n", "lab", "fdb", "append", "00:00:00:00:00:00", "dev", "vx0", "dst", "198.18.0.14"],
    ["bridge", "-n", "lab", "fdb", "del", "00:00:00:00:00:00", "dev", "vx0", "dst", "198.18.0.11"],
  ]);
  expect(floodChangesArgv(undefined, "vx0", ["198.18.0.11"], ["198.18.0.11"])).toEqual([]);
  expect(floodShowArgv(undefined, "vx0")).toEqual(["bridge", "-j", "fdb", "show", "dev", "vx0"]);
});

test("vxlan: bridge -j fdb show, only the all-zero entries' remotes, sorted, in the kernel's spelling", () => {
  // Captured (iproute2 6.1, Linux 6.18): a device on a bridge with two flood entries appended and one
  // address added by hand, then an IPv6 device, and a device made with `remote`.
  const onBridge =
    '[{"mac":"aa:3c:e2:56:0a:4a","flags":[],"master":"br0","state":"permanent"},' +
    '{"mac":"02:11:22:33:44:55","dst":"192.0.2.2","flags":["self"],"state":"permanent"},' +
    '{"mac":"00:00:00:00:00:00","dst":"192.0.2.3","flags":["self"],"state":"permanent"},' +
    '{"mac":"00:00:00:00:00:00","dst":"192.0.2.2","flags":["self"],"state":"permanent"}]';
  expect(parseFloodRemotes(onBridge)).toEqual(["192.0.2.2", "192.0.2.3"]);
  expect(parseFloodRemotes('[{"mac":"00:00:00:00:00:00","dst":"2001:db8::2","flags":["self"],"state":"permanent"}]')).toEqual(["2001:db8::2"]);
  // Anything read back that is not an address never goes into a command.
  expect(parseFloodRemotes(`[{"mac":"00:00:00:00:00:00","dst":"x; reboot"},{"mac":"00:00:00:00:00:00","dst":"192.0.2.9"}]`)).toEqual(["192.0.2.9"]);
  expect(parseFloodRemotes('[{"mac":"00:00:00:00:00:00","dst":"192.0.2.7","flags":["self"],"state":"permanent"}]')).toEqual(["192.0.2.7"]);
  expect(parseFloodRemotes("[]")).toEqual([]);
  expect(parseFloodRemotes("")).toEqual([]);
});

test("vxlan: the default MTU leaves room for 50 bytes of IPv4 or 70 of IPv6 encapsulation", () => {
  expect(defaultVxlanMtu(1500, "198.18.0.11")).toBe(1450);
  expect(defaultVxlanMtu(9000, "2001:db8::2")).toBe(8930);
});

test("vxlan: ip -d -j link show, IPv4 and IPv6, and links that are not vxlan", () => {
  const v4 = JSON.stringify([
    {
      ifname: "vx0", flags: ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"], mtu: 1450, master: "br-vx", link_netnsid: 0,
      linkinfo: { info_kind: "vxlan", info_data: { id: 42, remote: "10.9.9.2", local: "10.9.9.1", link: "if3", port: 4789, learning: true } },
    },
  ]);
  expect(parseVxlan(v4)).toEqual({ vni: 42, local: "10.9.9.1", remote: "10.9.9.2", dstport: 4789, mtu: 1450, up: true, master: "br-vx" });
  const v6 = JSON.stringify([
    { ifname: "vx0", flags: ["BROADCAST", "MULTICAST"], mtu: 8930, linkinfo: { info_kind: "vxlan", info_data: { id: 42, remote6: "2001:db8::2", local6: "2001:db8::1", port: 8472 } } },
  ]);
  expect(parseVxlan(v6)).toEqual({ vni: 42, local: "2001:db8::1", remote: "2001:db8::2", dstport: 8472, mtu: 8930, up: false, master: undefined });
  expect(parseVxlan(JSON.stringify([{ ifname: "vx0", mtu: 1500, linkinfo: { info_kind: "bridge" } }]))).toBeUndefined();
  expect(parseVxlan("")).toBeUndefined();
});

test("vxlan: EEXIST from the kernel becomes an explanation; other failures keep command and stderr", () => {
  const result = (stderr: string) => ({ command: "ip link add ...", exitCode: 2, stdout: "", stderr, durationMs: 1 });
  for (const stderr of ["Error: A VXLAN device with the specified VNI already exists.", "RTNETLINK answers: File exists"]) {
    expect(explainAddFailure("root@h", { vni: 7, dstport: 4789 }, result(stderr)).message).toMatch(
      /^root@h: VNI 7 with dstport 4789 is already used by another vxlan device on this host \(EEXIST/,
    );
  }
  expect(explainAddFailure("root@h", { vni: 7, dstport: 4789 }, result("Error: something else")).message).toMatch(/command failed.*something else/s);
});

const netemSpec = { device: "eth-lab", delayMs: 0, jitterMs: 0, lossPercent: 0, corruptPercent: 0, duplicatePercent: 0, reorderPercent: 0, rateKbit: 0 };

test("netem: replace always carries every field, zeros included, so nothing set before lingers", () => {
  expect(netemReplaceArgv({ ...netemSpec, namespace: "lab", delayMs: 20, jitterMs: 0.5, lossPercent: 12.5, rateKbit: 10000, limit: 5000 })).toEqual([
    "ip", "netns", "exec", "lab", "tc", "qdisc", "replace", "dev", "eth-lab", "root", "netem", "limit", "5000",
    "delay", "20000us", "500us", "loss", "random", "12.5%", "corrupt", "0%", "duplicate", "0%", "reorder", "0%", "rate", "10000kbit",
  ]);
  expect(netemReplaceArgv(netemSpec)).toEqual([
    "tc", "qdisc", "replace", "dev", "eth-lab", "root", "netem", "limit", "1000",
    "delay", "0us", "0us", "loss", "random", "0%", "corrupt", "0%", "duplicate", "0%", "reorder", "0%", "rate", "0kbit",
  ]);
  expect(netemDeleteArgv({ device: "eth0" })).toEqual(["tc", "qdisc", "del", "dev", "eth0", "root"]);
});

test("netem: the default limit holds what the rate (or 10 Gbit/s) sends during the delay, at least tc's 1000", () => {
  expect(defaultLimit({ delayMs: 0, jitterMs: 0, rateKbit: 0 })).toBe(1000);
  // 100 ms on 1 Gbit/s, where tc's 1000 packets drop: 8334 full frames in flight, twice over.
  expect(defaultLimit({ delayMs: 100, jitterMs: 0, rateKbit: 1_000_000 })).toBe(16668);
  expect(defaultLimit({ delayMs: 20, jitterMs: 0, rateKbit: 0 })).toBe(33334);
  expect(defaultLimit({ delayMs: 50, jitterMs: 10, rateKbit: 1000 })).toBe(1000);
});

// Captured from `tc -j qdisc show dev a0` (iproute2 6.1, Linux 6.1).
const captured = {
  noqueue: '[{"kind":"noqueue","handle":"0:","root":true,"refcnt":2,"options":{}}]',
  full:
    '[{"kind":"netem","handle":"8001:","root":true,"refcnt":2,"options":{"limit":33334,"delay":{"delay":0.02,"jitter":0.005,"correlation":0},' +
    '"loss-random":{"loss":0.125,"correlation":0},"duplicate":{"duplicate":0.002,"correlation":0},"reorder":{"reorder":0.25,"correlation":0},' +
    '"corrupt":{"corrupt":0.001,"correlation":0},"rate":{"rate":1250000,"packetoverhead":0,"cellsize":0,"celloverhead":0},"ecn":false,"gap":1}}]',
  delayOnly: '[{"kind":"netem","handle":"8001:","root":true,"refcnt":2,"options":{"limit":1000,"delay":{"delay":0.02,"jitter":0,"correlation":0},"ecn":false,"gap":0}}]',
  rounded:
    '[{"kind":"netem","handle":"8001:","root":true,"refcnt":2,"options":{"limit":1000,"delay":{"delay":0.000499,"jitter":0,"correlation":0},' +
    '"loss-random":{"loss":1.00001e-06,"correlation":0},"rate":{"rate":12500000000,"packetoverhead":0,"cellsize":0,"celloverhead":0},"ecn":false,"gap":0}}]',
  long:
    '[{"kind":"netem","handle":"8001:","root":true,"refcnt":2,"options":{"limit":1000,"delay":{"delay":1.23457,"jitter":0,"correlation":0},' +
    '"loss-random":{"loss":0.333333,"correlation":0},"rate":{"rate":1000,"packetoverhead":0,"cellsize":0,"celloverhead":0},"ecn":false,"gap":0}}]',
};

test("netem: tc's seconds, fractions and bytes/s come back in the inputs' units", () => {
  expect(parseRootQdisc(captured.noqueue)).toEqual({ kind: "noqueue", isDefault: true, netem: undefined });
  expect(parseRootQdisc("[]")).toEqual({ kind: "noop", isDefault: true });
  expect(parseRootQdisc(captured.full).netem).toEqual({
    delayMs: 20, jitterMs: 5, lossPercent: 12.5, corruptPercent: 0.1, duplicatePercent: 0.2, reorderPercent: 25, rateKbit: 10000, limit: 33334,
  });
  expect(parseRootQdisc(captured.delayOnly)).toMatchObject({ isDefault: false, netem: { delayMs: 20, lossPercent: 0, rateKbit: 0, limit: 1000 } });
  expect(parseRootQdisc('[{"kind":"tbf","handle":"8002:","root":true,"options":{}}]')).toEqual({ kind: "tbf", isDefault: false, netem: undefined });
});

test("netem: values within the kernel's and tc's rounding read back as asked; real changes do not", () => {
  const rounded = parseRootQdisc(captured.rounded).netem!;
  expect(asAsked(rounded, { delayMs: 0.5, lossPercent: 0.0001, rateKbit: 100_000_000, limit: 1000 })).toMatchObject({
    delayMs: 0.5, lossPercent: 0.0001, rateKbit: 100_000_000, limit: 1000,
  });
  const long = parseRootQdisc(captured.long).netem!;
  expect(asAsked(long, { delayMs: 1234.567, lossPercent: 33.333333, rateKbit: 8 })).toMatchObject({ delayMs: 1234.567, lossPercent: 33.333333, rateKbit: 8 });
  const drifted = parseRootQdisc(captured.delayOnly).netem!;
  expect(asAsked(drifted, { delayMs: 50, lossPercent: 1, limit: 2000 })).toMatchObject({ delayMs: 20, lossPercent: 0, limit: 1000 });
});
