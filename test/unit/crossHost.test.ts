/** Vxlan and Netem: exact argv, parsers on captured output, defaults and read-back rounding. */
import { asAsked, defaultLimit, netemDeleteArgv, netemReplaceArgv, parseRootQdisc } from "../../provider/kinds/netem";
import {
  explainAddFailure,
  floodChangesArgv,
  floodShowArgv,
  parseFloodRemotes,
  parseVxlan,
  provisionalLeftovers,
  provisionalName,
  remotesChangeArgv,
  RENAME_REFUSED,
  vxlanAddArgv,
  vxlanCreateArgv,
  vxlanKind,
  vxlanListArgv,
} from "../../provider/kinds/vxlan";
import { AlreadyExistsError, CommandFailedError } from "../../provider/errors";
import { defaultVxlanMtu } from "../../provider/kindSettings";
import { scriptedHost } from "../harness/scriptedHost";

const vxlanSpec = { name: "vx0", vni: 4242, local: "198.18.0.10", remote: "198.18.0.11", dstport: 4789, device: "eth0", up: true };

test("vxlan: made from the host's namespace under the name given, placed in its own at once, dstport always given", () => {
  expect(vxlanAddArgv(vxlanSpec, "vx0")).toEqual([
    "ip",
    "link",
    "add",
    "name",
    "vx0",
    "type",
    "vxlan",
    "id",
    "4242",
    "local",
    "198.18.0.10",
    "remote",
    "198.18.0.11",
    "dstport",
    "4789",
    "dev",
    "eth0",
  ]);
  expect(vxlanAddArgv({ ...vxlanSpec, namespace: "lab", dstport: 14789 }, "pnt-vx-0a1b2c3d")).toEqual([
    "ip",
    "link",
    "add",
    "name",
    "pnt-vx-0a1b2c3d",
    "netns",
    "lab",
    "type",
    "vxlan",
    "id",
    "4242",
    "local",
    "198.18.0.10",
    "remote",
    "198.18.0.11",
    "dstport",
    "14789",
    "dev",
    "eth0",
  ]);
});

test("vxlan: a provisional name fits the 15-byte limit and is new each time", () => {
  const names = [provisionalName(), provisionalName()];
  for (const name of names) expect(name).toMatch(/^pnt-vx-[0-9a-f]{8}$/);
  expect(Buffer.byteLength(names[0])).toBeLessThanOrEqual(15);
  expect(names[0]).not.toBe(names[1]);
});

test("vxlan create in a namespace is one constant script: add, rename there, remove if the rename is refused; values as arguments", () => {
  const inLab = { ...vxlanSpec, namespace: "lab", dstport: 14789 };
  const argv = vxlanCreateArgv(inLab, "pnt-vx-0a1b2c3d");
  expect(argv.slice(0, 2)).toEqual(["sh", "-c"]);
  expect(argv.slice(3)).toEqual(["sh", "lab", "pnt-vx-0a1b2c3d", "vx0", ...vxlanAddArgv(inLab, "pnt-vx-0a1b2c3d")]);
  expect(argv[2]).toBe(
    'namespace=$1 provisional=$2 name=$3\nshift 3\n"$@" || exit\n' +
      'ip -n "$namespace" link set dev "$provisional" name "$name" && exit 0\n' +
      `ip -n "$namespace" link del dev "$provisional"\nexit ${RENAME_REFUSED}`,
  );
  expect(vxlanCreateArgv({ ...inLab, name: "x'; reboot" }, "pnt-vx-0a1b2c3d")[2]).toBe(argv[2]);
  // In the host's own namespace the device is made under its name at once.
  expect(vxlanCreateArgv(vxlanSpec)).toEqual(vxlanAddArgv(vxlanSpec, "vx0"));
  expect(vxlanListArgv("lab")).toEqual(["ip", "-n", "lab", "-d", "-j", "link", "show", "type", "vxlan"]);
});

/** A host where the namespace "lab" has no vx0 yet, its vxlan devices list as `listed`, and the create script answers `created`. */
const labHost = (created: { exitCode: number; stderr: string }, listed = "[]") =>
  scriptedHost((argv) => {
    if (argv.includes("eth0") && argv.includes("show")) return { stdout: JSON.stringify([{ ifindex: 2, ifname: "eth0", mtu: 1500 }]) };
    if (argv.includes("type") && argv.includes("show")) return { stdout: listed };
    if (argv.includes("show")) return { exitCode: 1, stderr: 'Device "vx0" does not exist.\n' };
    if (argv[0] === "sh") return created;
    return {};
  });
const createInLab = (host: ReturnType<typeof labHost>) =>
  vxlanKind.create(host, vxlanKind.inputs.parse({ connection: { host: "test", password: "x" }, ...vxlanSpec, namespace: "lab" }), false);

test("vxlan create in a namespace: a rename refused (the name taken there) is AlreadyExistsError naming both; no more runs", async () => {
  // A device of that name appeared in the namespace since create looked; the script removed its own.
  const host = labHost({ exitCode: RENAME_REFUSED, stderr: "RTNETLINK answers: File exists\n" });
  const err = await createInLab(host).catch((e) => e);
  expect(err).toBeInstanceOf(AlreadyExistsError);
  expect(err.message).toMatch(/^root@test:22: interface "vx0" in namespace "lab" already exists/);
  expect(host.ran.at(-1)).toMatch(/^sh -c /);

  const other = await createInLab(labHost({ exitCode: RENAME_REFUSED, stderr: "Error: something else\n" })).catch((e) => e);
  expect(other).toBeInstanceOf(CommandFailedError);
  expect(other.message).toMatch(/exit 76.*something else/s);
  // The add itself was refused: the VNI and port are taken.
  const taken = await createInLab(labHost({ exitCode: 2, stderr: "RTNETLINK answers: File exists\n" })).catch((e) => e);
  expect(taken.message).toMatch(/VNI 4242 with dstport 4789 is already used by another vxlan device/);
});

// The fields read of `ip -n lab -d -j link show type vxlan` (iproute2 6.1, Linux 6.18).
const vxlanLink = (ifname: string, id: number, port: number) => ({
  ifindex: 9,
  ifname,
  mtu: 1450,
  linkinfo: { info_kind: "vxlan", info_data: { id, port, local: "198.18.0.10" } },
});

test("vxlan: provisionally named devices left by an unfinished create, with this VNI and port, are found; others are not ours", () => {
  const listed = JSON.stringify([
    vxlanLink("pnt-vx-0badcafe", 4242, 4789),
    vxlanLink("pnt-vx-1badcafe", 4243, 4789),
    vxlanLink("pnt-vx-2badcafe", 4242, 14789),
    vxlanLink("vx-mine", 4242, 4789),
    vxlanLink("pnt-vx-nothex!!", 4242, 4789),
  ]);
  expect(provisionalLeftovers(listed, { vni: 4242, dstport: 4789 })).toEqual(["pnt-vx-0badcafe"]);
  expect(provisionalLeftovers("", { vni: 4242, dstport: 4789 })).toEqual([]);
});

test("vxlan create for a namespace removes a leftover provisional device holding its VNI and port before adding", async () => {
  const host = labHost(
    { exitCode: 0, stderr: "" },
    JSON.stringify([vxlanLink("pnt-vx-0badcafe", 4242, 4789), vxlanLink("pnt-vx-1badcafe", 7, 4789)]),
  );
  await createInLab(host).catch(() => undefined); // the scripted host has no device to read back afterwards
  const add = host.ran.findIndex((c) => c.startsWith("sh -c "));
  expect(host.ran.slice(add - 2, add)).toEqual(["ip -n lab -d -j link show type vxlan", "ip -n lab link del dev pnt-vx-0badcafe"]);
  expect(host.ran.filter((c) => c.includes("pnt-vx-1badcafe"))).toEqual([]);
});

test("vxlan with remotes: no fixed remote; one all-zero forwarding entry per remote, added before any is removed", () => {
  const { remote: _remote, ...segment } = vxlanSpec;
  expect(vxlanAddArgv({ ...segment, remotes: ["198.18.0.11", "198.18.0.12"] }, "vx0")).toEqual([
    "ip",
    "link",
    "add",
    "name",
    "vx0",
    "type",
    "vxlan",
    "id",
    "4242",
    "local",
    "198.18.0.10",
    "dstport",
    "4789",
    "dev",
    "eth0",
  ]);
  expect(floodChangesArgv("lab", "vx0", ["198.18.0.11", "198.18.0.12"], ["198.18.0.12", "198.18.0.13", "198.18.0.14"])).toEqual([
    ["bridge", "-n", "lab", "fdb", "append", "00:00:00:00:00:00", "dev", "vx0", "dst", "198.18.0.13"],
    ["bridge", "-n", "lab", "fdb", "append", "00:00:00:00:00:00", "dev", "vx0", "dst", "198.18.0.14"],
    ["bridge", "-n", "lab", "fdb", "del", "00:00:00:00:00:00", "dev", "vx0", "dst", "198.18.0.11"],
  ]);
  expect(floodChangesArgv(undefined, "vx0", ["198.18.0.11"], ["198.18.0.11"])).toEqual([]);
  expect(floodShowArgv(undefined, "vx0")).toEqual(["bridge", "-j", "fdb", "show", "dev", "vx0"]);
});

test("vxlan: a cable becomes a segment's port in place and back; what is wanted is there before what goes is removed", () => {
  const spec = { namespace: "lab", name: "vx0", local: "198.18.0.10" };
  const [append, del] = ["append", "del"].map((action) => (dst: string) => [
    "bridge",
    "-n",
    "lab",
    "fdb",
    action,
    "00:00:00:00:00:00",
    "dev",
    "vx0",
    "dst",
    dst,
  ]);
  const fixed = (remote: string) => ["ip", "-n", "lab", "link", "set", "dev", "vx0", "type", "vxlan", "remote", remote];
  // Two hosts to three: flood entries to both first (the fixed remote's own entry goes `via` the underlay, another
  // entry), then the fixed remote cleared.
  expect(remotesChangeArgv({ ...spec, remotes: ["198.18.0.11", "198.18.0.12"] }, { remote: "198.18.0.11", remotes: [] })).toEqual([
    append("198.18.0.11"),
    append("198.18.0.12"),
    fixed("0.0.0.0"),
  ]);
  // Back to a cable: the fixed remote first, then the flood entries go.
  expect(remotesChangeArgv({ ...spec, remote: "198.18.0.11" }, { remotes: ["198.18.0.11", "198.18.0.12"] })).toEqual([
    fixed("198.18.0.11"),
    del("198.18.0.11"),
    del("198.18.0.12"),
  ]);
  expect(remotesChangeArgv({ ...spec, remote: "198.18.0.13" }, { remote: "198.18.0.11" })).toEqual([fixed("198.18.0.13")]);
  expect(remotesChangeArgv({ ...spec, local: "2001:db8::1", remotes: ["2001:db8::2"] }, { remote: "2001:db8::2", remotes: [] })).toEqual([
    append("2001:db8::2"),
    fixed("::"),
  ]);
  expect(remotesChangeArgv({ ...spec, remote: "198.18.0.11" }, { remote: "198.18.0.11" })).toEqual([]);
  // Made by hand without `dev`: the fixed remote's entry is a plain flood entry, gone with the remote, so appended again.
  expect(
    remotesChangeArgv({ ...spec, remotes: ["198.18.0.11", "198.18.0.12"] }, { remote: "198.18.0.11", remotes: ["198.18.0.11"] }),
  ).toEqual([append("198.18.0.12"), fixed("0.0.0.0"), append("198.18.0.11")]);
});

/** The device the entries below belong to. */
const own = { vni: 4242, dstport: 4789 };

test("vxlan: bridge -j fdb show, only the all-zero entries' remotes, sorted, in the kernel's spelling", () => {
  // Captured (iproute2 6.1, Linux 6.18): a device on a bridge with two flood entries appended and one
  // address added by hand, then an IPv6 device, and a device made with `remote`.
  const onBridge =
    '[{"mac":"aa:3c:e2:56:0a:4a","flags":[],"master":"br0","state":"permanent"},' +
    '{"mac":"02:11:22:33:44:55","dst":"192.0.2.2","flags":["self"],"state":"permanent"},' +
    '{"mac":"00:00:00:00:00:00","dst":"192.0.2.3","flags":["self"],"state":"permanent"},' +
    '{"mac":"00:00:00:00:00:00","dst":"192.0.2.2","flags":["self"],"state":"permanent"}]';
  expect(parseFloodRemotes(onBridge, own)).toEqual(["192.0.2.2", "192.0.2.3"]);
  expect(parseFloodRemotes('[{"mac":"00:00:00:00:00:00","dst":"2001:db8::2","flags":["self"],"state":"permanent"}]', own)).toEqual([
    "2001:db8::2",
  ]);
  // Anything read back that is not an address never goes into a command.
  expect(parseFloodRemotes(`[{"mac":"00:00:00:00:00:00","dst":"x; reboot"},{"mac":"00:00:00:00:00:00","dst":"192.0.2.9"}]`, own)).toEqual([
    "192.0.2.9",
  ]);
  expect(parseFloodRemotes('[{"mac":"00:00:00:00:00:00","dst":"192.0.2.7","flags":["self"],"state":"permanent"}]', own)).toEqual([
    "192.0.2.7",
  ]);
  expect(parseFloodRemotes("[]", own)).toEqual([]);
  expect(parseFloodRemotes("", own)).toEqual([]);
});

test("vxlan: an all-zero entry with another port or VNI, or with via, is someone else's: never a remote, so never deleted", () => {
  // Captured (iproute2 6.1, Linux 6.18) from a device with vni 4242, dstport 4789 after
  // \`bridge fdb append 00:00:00:00:00:00 dev vx0 dst 192.0.2.N …\` with: nothing; port 4789; port 5555;
  // vni 4242; vni 99; via d1. The kernel prints port and vni only where they differ from the device's.
  const handMade =
    '[{"mac":"00:00:00:00:00:00","dst":"192.0.2.2","flags":["self"],"state":"permanent"},' +
    '{"mac":"00:00:00:00:00:00","dst":"192.0.2.3","flags":["self"],"state":"permanent"},' +
    '{"mac":"00:00:00:00:00:00","dst":"192.0.2.4","port":5555,"flags":["self"],"state":"permanent"},' +
    '{"mac":"00:00:00:00:00:00","dst":"192.0.2.5","flags":["self"],"state":"permanent"},' +
    '{"mac":"00:00:00:00:00:00","dst":"192.0.2.6","vni":99,"flags":["self"],"state":"permanent"},' +
    '{"mac":"00:00:00:00:00:00","dst":"192.0.2.7","viaIf":"d1","flags":["self"],"state":"permanent"}]';
  expect(parseFloodRemotes(handMade, own)).toEqual(["192.0.2.2", "192.0.2.3", "192.0.2.5"]);
  // An interface without a name here is printed by index; our own port and vni, if ever printed, are ours.
  expect(parseFloodRemotes('[{"mac":"00:00:00:00:00:00","dst":"192.0.2.8","viaIfIndex":7,"linkNetNsId":0}]', own)).toEqual([]);
  expect(parseFloodRemotes('[{"mac":"00:00:00:00:00:00","dst":"192.0.2.9","port":4789,"vni":4242}]', own)).toEqual(["192.0.2.9"]);
  // Reconciling with the hand-made entries present touches none of them.
  expect(floodChangesArgv(undefined, "vx0", parseFloodRemotes(handMade, own), ["192.0.2.2", "192.0.2.4"])).toEqual([
    ["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vx0", "dst", "192.0.2.4"],
    ["bridge", "fdb", "del", "00:00:00:00:00:00", "dev", "vx0", "dst", "192.0.2.3"],
    ["bridge", "fdb", "del", "00:00:00:00:00:00", "dev", "vx0", "dst", "192.0.2.5"],
  ]);
});

test("vxlan: the default MTU leaves room for 50 bytes of IPv4 or 70 of IPv6 encapsulation", () => {
  expect(defaultVxlanMtu(1500, "198.18.0.11")).toBe(1450);
  expect(defaultVxlanMtu(9000, "2001:db8::2")).toBe(8930);
});

test("vxlan: ip -d -j link show, IPv4 and IPv6, and links that are not vxlan", () => {
  const v4 = JSON.stringify([
    {
      ifname: "vx0",
      flags: ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"],
      mtu: 1450,
      master: "br-vx",
      link_netnsid: 0,
      linkinfo: {
        info_kind: "vxlan",
        info_data: { id: 42, remote: "10.9.9.2", local: "10.9.9.1", link: "if3", port: 4789, learning: true },
      },
    },
  ]);
  expect(parseVxlan(v4)).toEqual({ vni: 42, local: "10.9.9.1", remote: "10.9.9.2", dstport: 4789, mtu: 1450, up: true, master: "br-vx" });
  const v6 = JSON.stringify([
    {
      ifname: "vx0",
      flags: ["BROADCAST", "MULTICAST"],
      mtu: 8930,
      linkinfo: { info_kind: "vxlan", info_data: { id: 42, remote6: "2001:db8::2", local6: "2001:db8::1", port: 8472 } },
    },
  ]);
  expect(parseVxlan(v6)).toEqual({
    vni: 42,
    local: "2001:db8::1",
    remote: "2001:db8::2",
    dstport: 8472,
    mtu: 8930,
    up: false,
    master: undefined,
  });
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
  expect(explainAddFailure("root@h", { vni: 7, dstport: 4789 }, result("Error: something else")).message).toMatch(
    /command failed.*something else/s,
  );
});

const netemSpec = {
  device: "eth-lab",
  delayMs: 0,
  jitterMs: 0,
  lossPercent: 0,
  corruptPercent: 0,
  duplicatePercent: 0,
  reorderPercent: 0,
  rateKbit: 0,
};

test("netem: replace always carries every field, zeros included, so nothing set before lingers", () => {
  expect(
    netemReplaceArgv({ ...netemSpec, namespace: "lab", delayMs: 20, jitterMs: 0.5, lossPercent: 12.5, rateKbit: 10000, limit: 5000 }),
  ).toEqual([
    "ip",
    "netns",
    "exec",
    "lab",
    "tc",
    "qdisc",
    "replace",
    "dev",
    "eth-lab",
    "root",
    "netem",
    "limit",
    "5000",
    "delay",
    "20000us",
    "500us",
    "loss",
    "random",
    "12.5%",
    "corrupt",
    "0%",
    "duplicate",
    "0%",
    "reorder",
    "0%",
    "rate",
    "10000kbit",
  ]);
  expect(netemReplaceArgv(netemSpec)).toEqual([
    "tc",
    "qdisc",
    "replace",
    "dev",
    "eth-lab",
    "root",
    "netem",
    "limit",
    "1000",
    "delay",
    "0us",
    "0us",
    "loss",
    "random",
    "0%",
    "corrupt",
    "0%",
    "duplicate",
    "0%",
    "reorder",
    "0%",
    "rate",
    "0kbit",
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
    '[{"kind":"netem","handle":"8001:","root":true,"refcnt":2,"options":{"limit":33334,"delay":{"delay":0.02,"jitter":0.005,' +
    '"correlation":0},"loss-random":{"loss":0.125,"correlation":0},"duplicate":{"duplicate":0.002,"correlation":0},' +
    '"reorder":{"reorder":0.25,"correlation":0},"corrupt":{"corrupt":0.001,"correlation":0},"rate":{"rate":1250000,"packetoverhead":0,' +
    '"cellsize":0,"celloverhead":0},"ecn":false,"gap":1}}]',
  delayOnly:
    '[{"kind":"netem","handle":"8001:","root":true,"refcnt":2,"options":{"limit":1000,"delay":{"delay":0.02,"jitter":0,"correlation":0},' +
    '"ecn":false,"gap":0}}]',
  rounded:
    '[{"kind":"netem","handle":"8001:","root":true,"refcnt":2,"options":{"limit":1000,"delay":{"delay":0.000499,"jitter":0,' +
    '"correlation":0},"loss-random":{"loss":1.00001e-06,"correlation":0},"rate":{"rate":12500000000,"packetoverhead":0,"cellsize":0,' +
    '"celloverhead":0},"ecn":false,"gap":0}}]',
  long:
    '[{"kind":"netem","handle":"8001:","root":true,"refcnt":2,"options":{"limit":1000,"delay":{"delay":1.23457,"jitter":0,' +
    '"correlation":0},"loss-random":{"loss":0.333333,"correlation":0},"rate":{"rate":1000,"packetoverhead":0,"cellsize":0,' +
    '"celloverhead":0},"ecn":false,"gap":0}}]',
};

test("netem: tc's seconds, fractions and bytes/s come back in the inputs' units", () => {
  expect(parseRootQdisc(captured.noqueue)).toEqual({ kind: "noqueue", isDefault: true, netem: undefined });
  expect(parseRootQdisc("[]")).toEqual({ kind: "noop", isDefault: true });
  expect(parseRootQdisc(captured.full).netem).toEqual({
    delayMs: 20,
    jitterMs: 5,
    lossPercent: 12.5,
    corruptPercent: 0.1,
    duplicatePercent: 0.2,
    reorderPercent: 25,
    rateKbit: 10000,
    limit: 33334,
  });
  expect(parseRootQdisc(captured.delayOnly)).toMatchObject({
    isDefault: false,
    netem: { delayMs: 20, lossPercent: 0, rateKbit: 0, limit: 1000 },
  });
  expect(parseRootQdisc('[{"kind":"tbf","handle":"8002:","root":true,"options":{}}]')).toEqual({
    kind: "tbf",
    isDefault: false,
    netem: undefined,
  });
});

test("netem: values within the kernel's and tc's rounding read back as asked; real changes do not", () => {
  const rounded = parseRootQdisc(captured.rounded).netem!;
  expect(asAsked(rounded, { delayMs: 0.5, lossPercent: 0.0001, rateKbit: 100_000_000, limit: 1000 })).toMatchObject({
    delayMs: 0.5,
    lossPercent: 0.0001,
    rateKbit: 100_000_000,
    limit: 1000,
  });
  const long = parseRootQdisc(captured.long).netem!;
  expect(asAsked(long, { delayMs: 1234.567, lossPercent: 33.333333, rateKbit: 8 })).toMatchObject({
    delayMs: 1234.567,
    lossPercent: 33.333333,
    rateKbit: 8,
  });
  const drifted = parseRootQdisc(captured.delayOnly).netem!;
  expect(asAsked(drifted, { delayMs: 50, lossPercent: 1, limit: 2000 })).toMatchObject({ delayMs: 20, lossPercent: 0, limit: 1000 });
});
