/** The diff rules every kind shares. */
import { provider } from "../../provider";
import { UNKNOWN } from "../../provider/validate";

const connection = {
  host: "10.0.0.1",
  port: 22,
  user: "root",
  privateKey: "A",
  sudo: false,
  maxSessions: 2,
  commandTimeout: 60,
  insecureSkipHostKeyCheck: false,
};
const veth = provider("Veth");
/** What state holds: the properties read back, and the paths the program set (SET_PROPERTIES). */
const olds = {
  connection,
  name: "veth-red",
  namespace: "red",
  up: true,
  mtu: 1500,
  peer: { name: "veth-red-br", master: "v-net-0", up: true, mtu: 1500 },
  setProperties: ["name", "namespace", "up", "peer.name", "peer.master", "peer.up"],
};
const news = { connection, name: "veth-red", namespace: "red", up: true, peer: { name: "veth-red-br", master: "v-net-0", up: true } };

test("no change when what is asked matches what was observed; unset properties are not managed", async () => {
  expect(await veth.diff("id", olds, news)).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
});

test("in-place properties update; identity properties replace, deleting first", async () => {
  expect(await veth.diff("id", olds, { ...news, mtu: 1400 })).toMatchObject({ changes: true, replaces: [] });
  expect(await veth.diff("id", olds, { ...news, peer: { ...news.peer, master: "other" } })).toMatchObject({ replaces: [] });
  expect(await veth.diff("id", olds, { ...news, name: "veth-x" })).toEqual({
    changes: true,
    replaces: ["name"],
    deleteBeforeReplace: true,
  });
  expect(await veth.diff("id", olds, { ...news, peer: { ...news.peer, namespace: "blue" } })).toMatchObject({ replaces: ["peer"] });
});

test("credentials change in place; host, port and jump host are identity", async () => {
  for (const change of [{ privateKey: "B" }, { user: "admin", sudo: true }, { password: "pw" }, { commandTimeout: 5 }]) {
    expect(await veth.diff("id", olds, { ...news, connection: { ...connection, ...change } })).toMatchObject({
      changes: true,
      replaces: [],
    });
  }
  for (const change of [{ host: "10.0.0.2" }, { port: 2222 }, { proxy: { host: "10.0.0.9", port: 22, user: "root" } }]) {
    expect(await veth.diff("id", olds, { ...news, connection: { ...connection, ...change } })).toMatchObject({
      replaces: ["connection"],
    });
  }
});

test("preview: unknown values count as changes, and replace where they are identity", async () => {
  expect(await veth.diff("id", olds, { ...news, mtu: UNKNOWN })).toMatchObject({ changes: true, replaces: [] });
  expect(await veth.diff("id", olds, { ...news, namespace: UNKNOWN })).toMatchObject({ replaces: ["namespace"] });
  expect(await veth.diff("id", olds, { ...news, peer: UNKNOWN })).toMatchObject({ replaces: ["peer"] });
  expect(await veth.diff("id", olds, { ...news, connection: { ...connection, host: UNKNOWN } })).toMatchObject({
    replaces: ["connection"],
  });
});

test("a rule resource with a rule missing on the host wants an update", async () => {
  const masq = provider("Masquerade");
  const inputs = { connection, source: "192.168.15.0/24", acceptForward: true };
  const rules = [
    "iptables -t nat -A POSTROUTING -s 192.168.15.0/24 ! -d 192.168.15.0/24 -m comment --comment pulumi-netns:m -j MASQUERADE",
    "iptables -t filter -A PULUMI-NETNS-FWD -s 192.168.15.0/24 -m comment --comment pulumi-netns:m -j ACCEPT",
    "iptables -t filter -A PULUMI-NETNS-FWD -d 192.168.15.0/24 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment " +
      "pulumi-netns:m -j ACCEPT",
    "iptables -t filter -A FORWARD -j PULUMI-NETNS-FWD",
  ];
  const state = (found: string[]) => ({ ...inputs, rules: found, setProperties: ["source", "acceptForward"] });
  expect(await masq.diff("m", state(rules), inputs)).toMatchObject({ changes: false });
  expect(await masq.diff("m", state(rules.slice(1)), inputs)).toMatchObject({ changes: true, replaces: [] });
  // Shadowed: the jump to our chain is missing.
  expect(await masq.diff("m", state(rules.slice(0, 3)), inputs)).toMatchObject({ changes: true, replaces: [] });
  // A marked rule of another shape (edited by hand), where the current one is missing.
  const edited = ["iptables -t nat -A POSTROUTING -s 192.168.15.0/24 -m comment --comment pulumi-netns:m -j MASQUERADE", ...rules.slice(1)];
  expect(await masq.diff("m", state(edited), inputs)).toMatchObject({ changes: true, replaces: [] });
});

describe("a property the program stopped setting is a change", () => {
  const set = ["name", "namespace", "mtu", "up", "peer.name", "peer.master", "peer.up"];
  const recorded = { ...olds, setProperties: set };

  test("identity unset replaces; in-place unset updates", async () => {
    const { namespace: _ns, ...withoutNamespace } = news;
    expect(await veth.diff("id", recorded, withoutNamespace)).toEqual({
      changes: true,
      replaces: ["namespace"],
      deleteBeforeReplace: true,
    });
    const { master: _m, ...peerWithoutMaster } = news.peer;
    expect(await veth.diff("id", recorded, { ...news, mtu: 1500, peer: peerWithoutMaster })).toEqual({
      changes: true,
      replaces: [],
      deleteBeforeReplace: false,
    });
    expect(await veth.diff("id", { ...recorded, setProperties: set.filter((p) => p !== "mtu") }, news)).toMatchObject({ changes: false });
  });

  test("a PortForward that drops `destination` is replaced, so its narrower rules go", async () => {
    const pf = provider("PortForward");
    const inputs = { connection, protocol: "tcp", port: 80, to: "10.0.0.2:80", acceptForward: true, fromHost: true };
    const state = {
      ...inputs,
      destination: "10.0.0.1",
      setProperties: ["protocol", "port", "to", "destination", "acceptForward", "fromHost"],
    };
    expect(await pf.diff("pf-1", state, inputs)).toMatchObject({ changes: true, replaces: ["destination"] });
  });

  test("the record holds every leaf path the program sets, defaults included", async () => {
    const { setPaths } = await import("../../provider/controller");
    const { kindNamed } = await import("../../provider/kinds");
    expect(setPaths(kindNamed("Veth"), news)).toEqual(["name", "namespace", "up", "peer.name", "peer.master", "peer.up"]);
  });
});

test("preview: an unknown credential updates in place; only an unknown target replaces", async () => {
  expect(await veth.diff("id", olds, { ...news, connection: { ...connection, privateKey: UNKNOWN } })).toEqual({
    changes: true,
    replaces: [],
    deleteBeforeReplace: false,
  });
  expect(await veth.diff("id", olds, { ...news, connection: UNKNOWN })).toMatchObject({ replaces: ["connection"] });
  expect(await veth.diff("id", olds, { ...news, connection: { ...connection, proxy: UNKNOWN } })).toMatchObject({
    replaces: ["connection"],
  });
  expect(await veth.diff("id", olds, { ...news, connection: { ...connection, port: UNKNOWN } })).toMatchObject({
    replaces: ["connection"],
  });
});

test("a property the program starts to set is an update, even with the value the host already has", async () => {
  const recorded = { ...olds, setProperties: ["name", "namespace", "up", "peer.name", "peer.master", "peer.up"] };
  expect(await veth.diff("id", recorded, { ...news, mtu: 1500 })).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
  expect(await veth.diff("id", recorded, news)).toMatchObject({ changes: false });
});

test("an address that changes only its prefix length is deleted first: the kernel holds it once per device", async () => {
  const address = provider("Address");
  const state = { connection, device: "eth0", address: "2001:db8::1/64", setProperties: ["device", "address"] };
  expect(await address.diff("id", state, { connection, device: "eth0", address: "2001:db8::1/48" })).toMatchObject({
    deleteBeforeReplace: true,
  });
  expect(await address.diff("id", state, { connection, device: "eth0", address: "2001:db8::2/64" })).toMatchObject({
    deleteBeforeReplace: false,
  });
});

test("preview: a route whose device is not known yet is an update, not a replacement of its defaulted family", async () => {
  const route = provider("Route");
  const created = (await route.check({}, { connection, destination: "10.92.0.0/16", device: "va" })).inputs;
  const state = { ...created, setProperties: ["destination", "family", "device"] };
  expect(await route.diff("id", state, { connection, destination: "10.92.0.0/16", device: UNKNOWN })).toEqual({
    changes: true,
    replaces: [],
    deleteBeforeReplace: false,
  });
});

test("state keeps the connection without its defaults; another port replaces", async () => {
  const asked = { host: "10.0.0.1", privateKey: "A", port: 22, sudo: true, proxy: { host: "10.0.0.9", user: "root", password: "p" } };
  const checked = (await veth.check({}, { ...news, connection: asked })).inputs;
  expect(checked.connection).toEqual({ host: "10.0.0.1", privateKey: "A", sudo: true, proxy: { host: "10.0.0.9", password: "p" } });
  const { connection: _ignored, ...rest } = news;
  const compact = (await veth.check({}, { ...rest, connection: { host: "10.0.0.1", privateKey: "A" } })).inputs;
  expect(compact.connection).toEqual({ host: "10.0.0.1", privateKey: "A" });
  expect(
    await veth.diff(
      "id",
      { ...olds, connection: compact.connection },
      { ...news, connection: { host: "10.0.0.1", privateKey: "A", port: 2222 } },
    ),
  ).toMatchObject({
    replaces: ["connection"],
  });
});

test("state keeps `adopt` only when set: the create that runs validates again, defaulting it", async () => {
  expect((await veth.check({}, news)).inputs).not.toHaveProperty("adopt");
  expect((await veth.check({}, { ...news, adopt: true })).inputs).toMatchObject({ adopt: true });
});

test("a Vxlan's remotes change in place, in any order, and so does switching between remote and remotes", async () => {
  const vxlan = provider("Vxlan");
  const checked = async (inputs: Record<string, unknown>) => (await vxlan.check({}, { connection, ...inputs })).inputs;
  const segment = { name: "vx0", vni: 7, local: "2001:db8::1", device: "eth0" };
  const news = await checked({ ...segment, remotes: ["2001:DB8::3", "2001:db8:0::2"] });
  expect(news.remotes).toEqual(["2001:db8::2", "2001:db8::3"]);
  const olds = { ...news, mtu: 1430, up: true, setProperties: ["name", "vni", "local", "remotes", "dstport", "device", "up"] };
  expect(await vxlan.diff("id", olds, await checked({ ...segment, remotes: ["2001:db8::3", "2001:db8::2"] }))).toMatchObject({
    changes: false,
  });
  for (const remotes of [["2001:db8::2"], ["2001:db8::2", "2001:db8::3", "2001:db8::4"]]) {
    expect(await vxlan.diff("id", olds, await checked({ ...segment, remotes }))).toEqual({
      changes: true,
      replaces: [],
      deleteBeforeReplace: false,
    });
  }
  // Drift read back from the forwarding database: an entry missing.
  expect(await vxlan.diff("id", { ...olds, remotes: ["2001:db8::3"] }, news)).toMatchObject({ changes: true, replaces: [] });
  expect(await vxlan.diff("id", olds, await checked({ ...segment, remote: "2001:db8::2" }))).toEqual({
    changes: true,
    replaces: [],
    deleteBeforeReplace: false,
  });
  // A two-host cable with a fixed remote becomes a segment's port in place.
  const cable = {
    ...(await checked({ ...segment, remote: "2001:db8::2" })),
    mtu: 1430,
    up: true,
    setProperties: ["name", "vni", "local", "remote", "dstport", "device", "up"],
  };
  expect(await vxlan.diff("id", cable, await checked({ ...segment, remotes: ["2001:db8::2"] }))).toEqual({
    changes: true,
    replaces: [],
    deleteBeforeReplace: false,
  });
});
