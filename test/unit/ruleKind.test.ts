/** Rule kinds against a scripted host: what runs, in which order, and what stops them. */
import { masqueradeKind } from "../../provider/kinds/masquerade";
import { portForwardKind } from "../../provider/kinds/portForward";
import { scriptedHost } from "../harness/scriptedHost";

const udp = portForwardKind.inputs.parse({
  connection: { host: "test", password: "x" },
  protocol: "udp",
  port: 5353,
  to: "192.168.15.2:53",
});

test("a UDP port forward without the conntrack tool fails naming the Debian package, before any rule is touched", async () => {
  for (const missing of [
    { exitCode: 127, stderr: "sh: 1: conntrack: not found" },
    { exitCode: 1, stderr: "sudo: conntrack: command not found" },
  ]) {
    const host = scriptedHost((argv) => (argv[0] === "conntrack" ? missing : {}));
    await expect(portForwardKind.create(host, udp, false)).rejects.toThrow(
      /root@test:22: the `conntrack` tool is missing.*Debian package "conntrack"/,
    );
    expect(host.ran).toEqual(["conntrack --version"]);
  }
});

test("a UDP port forward deletes without the conntrack tool: only rules being put in need it", async () => {
  const marked =
    '-A PREROUTING -p udp -m udp --dport 5353 -m comment --comment "pulumi-netns:pf-1" -j DNAT --to-destination 192.168.15.2:53';
  const host = scriptedHost((argv) => {
    if (argv[0] === "conntrack") return { exitCode: 127, stderr: "sh: 1: conntrack: not found" };
    if (argv.includes("-S") && argv.includes("PREROUTING")) return { stdout: `-P PREROUTING ACCEPT\n${marked}\n` };
    if (argv.includes("-D") && !argv.includes("pulumi-netns:pf-1"))
      return { exitCode: 1, stderr: "iptables: Bad rule (does a matching rule exist in that chain?).\n" };
    return {};
  });
  await portForwardKind.delete(host, "pf-1", udp);
  expect(host.ran.some((c) => c.includes("-D PREROUTING") && c.includes("pulumi-netns:pf-1"))).toBe(true);
});

test("rules asked for in a namespace that does not exist fail; deleting them there is done", async () => {
  const host = scriptedHost((argv) =>
    argv.includes("-S") ? { exitCode: 1, stderr: 'Cannot open network namespace "gone": No such file or directory' } : {},
  );
  const masquerade = masqueradeKind.inputs.parse({ connection: { host: "test", password: "x" }, source: "10.0.0.0/24", namespace: "gone" });
  await expect(masqueradeKind.create(host, masquerade, false)).rejects.toThrow(/network namespace "gone" does not exist/);
  await expect(masqueradeKind.delete(host, "masq-1", masquerade)).resolves.toBeUndefined();
});

test("a UDP port forward flushes its port after the rules are in, and after a marked rule is gone", async () => {
  const marked =
    '-A PREROUTING -p udp -m udp --dport 5353 -m comment --comment "pulumi-netns:pf-1" -j DNAT --to-destination 192.168.15.2:53';
  const host = scriptedHost((argv) => {
    if (argv[0] === "conntrack" && argv[1] === "-D")
      return { exitCode: 1, stderr: "conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.\n" };
    if (argv.includes("-S") && argv.includes("PREROUTING")) return { stdout: `-P PREROUTING ACCEPT\n${marked}\n` };
    if (argv.includes("-D") && !argv.includes("pulumi-netns:pf-1"))
      return { exitCode: 1, stderr: "iptables: Bad rule (does a matching rule exist in that chain?).\n" };
    return {};
  });
  const flush = "conntrack -D -p udp --orig-port-dst 5353";
  await portForwardKind.create(host, udp, false);
  expect(host.ran.indexOf(flush)).toBeGreaterThan(host.ran.map((c) => c.includes(" -A ")).lastIndexOf(true));
  host.ran.length = 0;
  await portForwardKind.delete(host, "pf-1", udp);
  const removed = host.ran.indexOf(
    "iptables -w 10 -t nat -D PREROUTING -p udp -m udp --dport 5353 -m comment --comment pulumi-netns:pf-1 -j DNAT --to-destination " +
      "192.168.15.2:53",
  );
  expect(removed).toBeGreaterThan(0);
  expect(host.ran.indexOf(flush)).toBeGreaterThan(removed);
});
