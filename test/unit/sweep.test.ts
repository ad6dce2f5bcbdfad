/** The sweep's pure parts: record paths read back, owner tags, and the command line's arguments. */
import { parseSweepArgs, parseTarget } from "../../cli/sweep";
import { parseRecordListing } from "../../provider/holders";
import { networkFromRecordName, ownerRecordPath, ownerRecords, taggedOwner } from "../../provider/owner";

test("a record listing (grep -rZ) reads back the area, namespace and names its paths were built from", () => {
  const address = ownerRecordPath("addr", "lab-1", "eth_0", "10.0.0.2/24");
  const route = ownerRecordPath("route", undefined, "ipv6", "fd00::/64", "1024");
  const stdout = [
    `/run/pulumi-netns/netns/host/red\0{"identity":"1 2","holders":{"ab":"0123456789abcdef@p/s"}}`,
    `/run/pulumi-netns/link/netns/red/br0\0{"identity":"x","holders":{}}`,
    `${address}\0pulumi-netns:0123456789abcdef@p/s`,
    `${route}\0pulumi-netns:fedcba9876543210@p/other`,
    "",
  ].join("\n");
  const records = parseRecordListing(stdout);
  expect(records.map(({ area, namespace, names }) => ({ area, namespace, names }))).toEqual([
    { area: "netns", namespace: undefined, names: ["red"] },
    { area: "link", namespace: "red", names: ["br0"] },
    { area: "owner/addr", namespace: "lab-1", names: ["eth_0", "10.0.0.2_24"] },
    { area: "owner/route", namespace: undefined, names: ["ipv6", "fd00::_64", "1024"] },
  ]);
  expect(ownerRecords(records, "addr")).toEqual([{ owner: "0123456789abcdef@p/s", namespace: "lab-1", names: ["eth_0", "10.0.0.2_24"] }]);
  expect(["10.0.0.2_24", "fd00::_64", "default"].map(networkFromRecordName)).toEqual(["10.0.0.2/24", "fd00::/64", "default"]);
  expect([taggedOwner("pulumi-netns:0123456789abcdef@p/s"), taggedOwner("uplink to the lab"), taggedOwner(undefined)]).toEqual([
    "0123456789abcdef@p/s",
    undefined,
    undefined,
  ]);
});

test("sweep's arguments: targets with user and port, IPv6 in brackets; a host key goes with one host", () => {
  expect(["10.0.0.7", "admin@lab.example:2222", "root@[fd00::7]:22"].map(parseTarget)).toEqual([
    { user: undefined, host: "10.0.0.7" },
    { user: "admin", host: "lab.example", port: 2222 },
    { user: "root", host: "fd00::7", port: 22 },
  ]);
  expect(() => parseTarget("root@")).toThrow("--host root@: expected [USER@]HOST[:PORT]");
  expect(parseSweepArgs(["--stack", "dev", "--host", "a", "--yes"])).toMatchObject({ stack: "dev", hosts: ["a"], yes: true, sudo: false });
  expect(() => parseSweepArgs(["--host", "a", "--host", "b", "--host-key", "SHA256:x"])).toThrow("--host-key goes with exactly one --host");
  expect(() => parseSweepArgs(["--stack"])).toThrow("--stack needs a value");
  expect(() => parseSweepArgs(["--force"])).toThrow("unknown option --force");
});
