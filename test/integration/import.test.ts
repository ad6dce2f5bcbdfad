/**
 * `pulumi import` at the provider: the native provider's Read with only an id, as the engine calls it,
 * against a lab made by hand. Each kind's object comes back with every input, the program declaring those
 * inputs checks and diffs to no change, a refresh reads the same, and the imported objects update and
 * delete like made ones: destroy leaves the host as it was before the hand-made lab. Errors name the form.
 * Netem is proven on its own host, and inside UML (importUnderUml.test.ts), whose kernel has netem.
 */
import { closeAllHosts } from "../../provider";
import { hostSnapshot } from "../harness/hostSnapshot";
import type { TestHost } from "../harness/throwawayHosts";
import type { Props } from "../../provider/kind";
import { NativeProvider } from "../../provider/native/provider";
import { HandMade, makeHandMadeLab } from "../harness/handMadeLab";
import { kernelHasNetem } from "../harness/kernel";
import { useTestHost } from "../harness/testHost";

let host: TestHost;
let provider: NativeProvider;

/** The provider, configured for the host as the engine would configure it from the stack's netns:* config. */
function connect(h: TestHost): void {
  host = h;
  provider = new NativeProvider("0.0.0", "{}");
  provider.configure(h.connection());
}

/** A change by hand: the provider's next read must not get a listing from before it (a refresh's reads share one). */
const byHand = (argv: string[]) => {
  host.sh(argv);
  closeAllHosts();
};

const urnOf = (type: string, name: string) => `urn:pulumi:dev::lab::netns:index:${type}::${name}`;
const NO_CHANGE = { changes: false, replaces: [], deleteBeforeReplace: false };

/** What the engine does on `pulumi import`, then on a preview of the program declaring what it read. */
async function importAndDeclare(type: string, name: string, id: string) {
  const urn = urnOf(type, name);
  const read = await provider.read(id, urn, {});
  const checked = await provider.check(urn, read.inputs ?? {}, read.inputs ?? {});
  expect(checked.failures).toBeUndefined();
  expect(await provider.diff(read.id, urn, read.props, checked.inputs)).toEqual(NO_CHANGE);
  return { urn, id: read.id, outs: read.props, inputs: read.inputs, news: checked.inputs };
}

describe("a lab made by hand", () => {
  let before: Record<string, unknown>;
  let lab: HandMade[];
  useTestHost((h) => {
    connect(h);
    before = hostSnapshot(h);
    lab = makeHandMadeLab(h);
  });

  const imported: Record<string, Awaited<ReturnType<typeof importAndDeclare>>> = {};

  test("every kind made by hand imports with the inputs that declare it; the declaration shows no change, nor does a refresh", async () => {
    for (const { type, name, id, inputs } of lab) {
      const result = await importAndDeclare(type, name, id);
      expect({ type, id: result.id, inputs: result.inputs }).toEqual({ type, id, inputs });
      const refreshed = await provider.read(result.id, result.urn, result.outs);
      expect(await provider.diff(result.id, result.urn, refreshed.props, result.news)).toEqual(NO_CHANGE);
      imported[`${type} ${name}`] = result;
    }
    // Read wrote nothing: no owner tag, no record.
    expect(
      host.sh(["sh", "-c", "find /run/pulumi-netns -type f 2>/dev/null; ip -d link | grep -c 'alias pulumi-netns' || true"]).trim(),
    ).toBe("0");
  });

  test("what a kind cannot declare, or does not find, is refused with a sentence that says why", async () => {
    const refused = (type: string, id: string) => provider.read(id, urnOf(type, "x"), {});
    await expect(refused("Veth", "veth-red")).rejects.toThrow('Veth id must be [NAMESPACE]/NAME (either end); got "veth-red"');
    await expect(refused("Namespace", "green")).rejects.toThrow(/: there is no Namespace "green" to import$/);
    await expect(refused("LabSegment", "blue-br")).rejects.toThrow(/: there is no LabSegment "blue-br" to import$/);
    await expect(refused("Veth", "/v-net-0")).rejects.toThrow(/interface "v-net-0" is a bridge link, not a veth/);
    await expect(refused("LabNode", "red")).rejects.toThrow(
      /interface "(br-in|vx0)" of namespace "red" is a (bridge|vxlan) link: a LabNode's interfaces are veth cables/,
    );
    await expect(refused("Check", "check-1")).rejects.toThrow(/^Check cannot be imported: /);
    await expect(refused("Service", "/web")).rejects.toThrow(/^Service cannot be imported: /);
    // The usual hand-made masquerade also rewrites traffic within the network, which Masquerade leaves alone.
    byHand(["iptables", "-w", "-t", "nat", "-A", "POSTROUTING", "-s", "10.99.0.0/24", "-j", "MASQUERADE"]);
    await expect(refused("Masquerade", "10.99.0.0/24")).rejects.toThrow(
      'the rule "iptables -t nat -A POSTROUTING -s 10.99.0.0/24 -j MASQUERADE" is not one a Masquerade makes ' +
        '(that would be "iptables -t nat -A POSTROUTING -s 10.99.0.0/24 ! -d 10.99.0.0/24 -j MASQUERADE")',
    );
    host.sh(["iptables", "-w", "-t", "nat", "-D", "POSTROUTING", "-s", "10.99.0.0/24", "-j", "MASQUERADE"]);
    // Two forwards of one port, to two host addresses: the id cannot tell them apart.
    const forward = (address: string) => [
      "-t",
      "nat",
      "-A",
      "PREROUTING",
      "-d",
      `${address}/32`,
      "-p",
      "tcp",
      "-m",
      "tcp",
      "--dport",
      "9090",
      "-j",
      "DNAT",
      "--to-destination",
      "192.168.15.9:90",
    ];
    byHand(["sh", "-c", `iptables -w ${forward("198.18.0.1").join(" ")} && iptables -w ${forward("198.18.0.2").join(" ")}`]);
    await expect(refused("PortForward", "tcp/9090")).rejects.toThrow(
      /"tcp\/9090" fits 2 sets of rules \("iptables -t nat -A PREROUTING -d 198.18.0.1\/32 .*"\); import takes one when one fits/,
    );
    host.sh([
      "sh",
      "-c",
      `iptables -w ${forward("198.18.0.1").join(" ").replace("-A", "-D")} && iptables -w ${forward("198.18.0.2").join(" ").replace("-A", "-D")}`,
    ]);
  });

  test("imported objects update in place: a veth's MTU, a sysctl's value, a port forward's rule removed by hand comes back once", async () => {
    const veth = imported["Veth red"];
    const mtu = { ...veth.news, mtu: 1400 };
    expect(await provider.diff(veth.id, veth.urn, veth.outs, mtu)).toMatchObject({ changes: true, replaces: [] });
    veth.outs = (await provider.update(veth.id, veth.urn, veth.outs, mtu)).outs;
    expect(JSON.parse(host.sh(["ip", "-j", "link", "show", "veth-red-br"]))[0].mtu).toBe(1400);

    const sysctl = imported["Sysctl forwarding"];
    sysctl.outs = (await provider.update(sysctl.id, sysctl.urn, sysctl.outs, { ...sysctl.news, value: "0" })).outs;
    expect(host.sh(["sysctl", "-n", "net.ipv4.ip_forward"]).trim()).toBe("0");

    const web = imported["PortForward web"];
    const dnat = [
      "-p",
      "tcp",
      "-m",
      "addrtype",
      "--dst-type",
      "LOCAL",
      "-m",
      "tcp",
      "--dport",
      "8080",
      "-j",
      "DNAT",
      "--to-destination",
      "192.168.15.2:80",
    ];
    byHand(["iptables", "-w", "-t", "nat", "-D", "PREROUTING", ...dnat]);
    const drifted = await provider.read(web.id, web.urn, web.outs);
    expect(await provider.diff(web.id, web.urn, drifted.props, web.news)).toMatchObject({ changes: true, replaces: [] });
    web.outs = (await provider.update(web.id, web.urn, drifted.props, web.news)).outs;
    const nat = host.sh(["iptables", "-w", "-t", "nat", "-S"]);
    expect(nat.split("\n").filter((line) => line.includes("--dport 8080"))).toEqual([
      `-A PREROUTING ${dnat.join(" ")}`,
      `-A OUTPUT ! -d 127.0.0.0/8 ${dnat.join(" ")}`,
    ]);
    expect(nat).not.toContain("pulumi-netns");
  });

  test("rules pulumi-netns made import by their mark, wherever they are", async () => {
    const made = urnOf("Masquerade", "made");
    const { inputs } = await provider.check(made, {}, { source: "10.77.0.0/16", namespace: "blue" });
    const { id, outs } = await provider.create(made, inputs);
    const again = await importAndDeclare("Masquerade", "again", id);
    expect(again.inputs).toEqual({ source: "10.77.0.0/16", namespace: "blue" });
    expect(again.outs.rules).toEqual(outs.rules);
    await provider.delete(id, made, outs);
  });

  test("a bridge made in a namespace names it in its id, the id it imports by", async () => {
    const made = urnOf("Bridge", "made");
    const { inputs } = await provider.check(made, {}, { name: "br-made", namespace: "blue", mtu: 1400 });
    const { id, outs } = await provider.create(made, inputs);
    expect(id).toBe("blue/br-made");
    expect((await importAndDeclare("Bridge", "again", id)).inputs).toEqual({ name: "br-made", namespace: "blue", mtu: 1400 });
    await provider.delete(id, made, outs);
  });

  test("destroy of what was imported leaves the host as before the hand-made lab, but for the forwarding it found on", async () => {
    for (const { urn, id, outs } of Object.values(imported).reverse()) await provider.delete(id, urn, outs as Props);
    // The sysctl goes back to the value import found (it was 1 by hand; the update set 0).
    expect(host.sh(["sysctl", "-n", "net.ipv4.ip_forward"]).trim()).toBe("1");
    host.sh(["sysctl", "-qw", "net.ipv4.ip_forward=0"]);
    expect(hostSnapshot(host)).toEqual(before);
    expect(host.sh(["sh", "-c", "find /run/pulumi-netns -type f ! -name lock 2>/dev/null; true"])).toBe("");
  });
});

describe("a netem qdisc", () => {
  useTestHost(connect);
  const made = kernelHasNetem ? "tc qdisc add dev nt0 root netem delay 20ms loss 7%" : "true";

  test(
    kernelHasNetem
      ? "made by hand imports with its values, updates, and its delete restores the default qdisc"
      : "on a kernel without netem, there is none to import",
    async () => {
      byHand(["sh", "-ec", `ip link add nt0 type veth peer name nt1; ip link set nt0 up; ip link set nt1 up; ${made}`]);
      const rootQdisc = () => JSON.parse(host.sh(["tc", "-j", "qdisc", "show", "dev", "nt0"])).find((q: { root?: boolean }) => q.root);
      if (!kernelHasNetem) {
        await expect(provider.read("/nt0", urnOf("Netem", "nt0"), {})).rejects.toThrow(/: there is no Netem "\/nt0" to import$/);
        return;
      }
      const netem = await importAndDeclare("Netem", "nt0", "/nt0");
      // tc's 0.07 is 7 %, as a program says it.
      expect(netem.inputs).toEqual({ device: "nt0", delayMs: 20, lossPercent: 7, limit: 1000 });
      const outs = (await provider.update(netem.id, netem.urn, netem.outs, { ...netem.news, delayMs: 30 })).outs;
      expect(rootQdisc().options.delay.delay).toBeCloseTo(0.03);
      await provider.delete(netem.id, netem.urn, outs);
      expect(rootQdisc().kind).toBe("noqueue");
    },
  );
});
