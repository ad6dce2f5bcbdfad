/**
 * Hostile values in any string field are refused before anything reaches the host: check names
 * the property, and create refuses on its own even if check was skipped.
 */
import { readlinkSync } from "node:fs";
import { closeAllHosts, provider } from "../../provider";
import { TestLab } from "../harness/throwawayHosts";

let lab: TestLab;

beforeAll(async () => {
  lab = await TestLab.create(1);
});

afterAll(() => {
  closeAllHosts();
  lab?.destroy();
});

const hostile = "red; touch /tmp/pwned";

const cases: [string, Record<string, unknown>][] = [
  ["Namespace", { name: hostile }],
  ["Bridge", { name: "br0", namespace: hostile }],
  ["Veth", { name: "veth0", peer: { name: "veth1", master: hostile } }],
  ["Address", { device: "eth0", address: `10.0.0.1/24 dev lo; touch /tmp/pwned` }],
  ["Route", { destination: "default", device: "eth0", via: hostile }],
  ["Masquerade", { source: "10.0.0.0/24", outInterface: hostile }],
  ["PortForward", { protocol: "tcp", port: 80, to: `${hostile}:80` }],
  ["Sysctl", { key: "net.ipv4.ip_forward", value: "1; touch /tmp/pwned" }],
  ["Vxlan", { name: "vx0", vni: 42, local: "10.0.0.1", remote: "10.0.0.2; touch /tmp/pwned", device: "eth0" }],
  ["Netem", { device: "eth0", namespace: hostile, delayMs: 20 }],
];

const netNamespace = (pid: number | string) => {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return undefined; // the process is gone
  }
};

/** SSH sessions on this lab's host only: ps lists the whole machine, other labs included. */
const sessions = () =>
  lab.hosts[0]
    .sh(["ps", "-eo", "pid=,args="])
    .split("\n")
    .map((line) => line.trim().match(/^(\d+) sshd: \S+@notty/))
    .filter((m) => m && netNamespace(m[1]) === netNamespace(lab.hosts[0].pid)).length;

test.each(cases)("%s: refused at check and at create; nothing runs on the host", async (kind, inputs) => {
  const connection = lab.hosts[0].connection();
  const checked = await provider(kind).check({}, { connection, ...inputs });
  expect(checked.failures?.length).toBeGreaterThan(0);
  await expect(provider(kind).create({ connection, ...inputs })).rejects.toThrow(/^invalid /);
  expect(sessions()).toBe(0);
  expect(lab.hosts[0].sh(["sh", "-c", "ls /tmp/pwned 2>/dev/null; ip netns list"])).toBe("");
});
