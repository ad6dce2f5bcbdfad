import { z } from "zod";
import { inNamespaceWords, partlyMade } from "../errors";
import { canonicalCidr, cidr, interfaceName, namespaceName, networkOf, parseCidr } from "../fields";
import { Argv, Host, inNamespace, inOneStep } from "../host";
import { listLinks, runUnlessGone } from "../iproute";
import { lockWaitSeconds, TAKE_HOST_LOCK } from "../holders";
import { defineKind, splitNamespace, SUSPENDED } from "../kind";
import { oneAtATime } from "../oneAtATime";
import {
  mayTakeOver,
  networkFromRecordName,
  objectOwner,
  ownerRecordPath,
  ownerRecords,
  recordedTag,
  removeOwnerRecordArgvs,
  takenOver,
  writeOwnerRecordArgvs,
} from "../owner";

interface AddressSpec {
  device: string;
  address: string;
  namespace?: string;
}

interface IpAddrJson {
  flags?: string[];
  addr_info?: { local: string; prefixlen: number; tentative?: boolean; dadfailed?: boolean }[];
}

export function parseAddresses(stdout: string): string[] {
  const links = JSON.parse(stdout.trim() || "[]") as IpAddrJson[];
  return links.flatMap((l) => (l.addr_info ?? []).map((a) => canonicalCidr(`${a.local}/${a.prefixlen}`)));
}

/** The other IPv4 addresses of the same subnet: the kernel deletes them with their primary. */
export function sameSubnet(addresses: string[], address: string): string[] {
  const c = parseCidr(address)!;
  if (c.family !== 4) return [];
  return addresses.filter((other) => {
    const o = parseCidr(other)!;
    return other !== canonicalCidr(address) && o.family === 4 && o.prefix === c.prefix && networkOf(o) === networkOf(c);
  });
}

export interface AddressState {
  tentative: boolean;
  dadFailed: boolean;
  /** The link has carrier; without it duplicate address detection waits. */
  carrier: boolean;
}

/** The address as `ip -j addr show dev X` reports it, or undefined when it is not there. */
export function parseAddressState(stdout: string, address: string): AddressState | undefined {
  const [link] = JSON.parse(stdout.trim() || "[]") as IpAddrJson[];
  return link && addressOn(link, address);
}

function addressOn(link: IpAddrJson, address: string): AddressState | undefined {
  const entry = link.addr_info?.find((a) => canonicalCidr(`${a.local}/${a.prefixlen}`) === canonicalCidr(address));
  if (!entry) return undefined;
  return { tentative: entry.tentative === true, dadFailed: entry.dadfailed === true, carrier: (link.flags ?? []).includes("LOWER_UP") };
}

export const addressArgv = (verb: "add" | "del", spec: AddressSpec): Argv =>
  inNamespace(spec.namespace, ["ip", "addr", verb, spec.address, "dev", spec.device]);

interface IpRouteJson {
  type?: string;
  dst: string;
  gateway?: string;
  protocol?: string;
  scope?: string;
  metric?: number;
  table?: string;
  prefsrc?: string;
  flags?: string[];
}

export const deviceRoutesArgv = (spec: AddressSpec): Argv =>
  inNamespace(spec.namespace, ["ip", "-4", "-j", "route", "show", "table", "all", "dev", spec.device]);

/**
 * Removing a device's last IPv4 address makes the kernel flush every IPv4 route through the device,
 * also routes that never needed the address (`10.92.0.0/16 dev va`). These are the commands that put
 * those back: not the address's own routes (made by the kernel, or with it as source), not local ones.
 */
export function routesToRestore(before: string, after: string, spec: AddressSpec): Argv[] {
  const address = parseCidr(spec.address)!.address;
  const parse = (stdout: string) => JSON.parse(stdout.trim() || "[]") as IpRouteJson[];
  const left = new Set(parse(after).map((r) => JSON.stringify(r)));
  return parse(before)
    .filter((r) => !left.has(JSON.stringify(r)))
    .filter((r) => (r.type ?? "unicast") === "unicast" && r.protocol !== "kernel" && r.prefsrc !== address && r.table !== "local")
    .map((r) => {
      const argv = ["ip", "-4", "route", "replace", r.dst];
      if (r.gateway) argv.push("via", r.gateway);
      argv.push("dev", spec.device);
      if (r.protocol) argv.push("proto", r.protocol);
      if (r.scope) argv.push("scope", r.scope);
      if (r.metric !== undefined) argv.push("metric", String(r.metric));
      if (r.table) argv.push("table", r.table);
      if (r.prefsrc) argv.push("src", r.prefsrc);
      if (r.flags?.includes("onlink")) argv.push("onlink");
      return inNamespace(spec.namespace, argv);
    });
}

const showArgv = (spec: AddressSpec): Argv => inNamespace(spec.namespace, ["ip", "-j", "addr", "show", "dev", spec.device]);

/** The address's state; null when it is not on the device, undefined when the device (or its namespace) is gone. */
async function addressState(host: Host, spec: AddressSpec): Promise<AddressState | null | undefined> {
  const result = await runUnlessGone(host, showArgv(spec), { readOnly: true });
  return result && (parseAddressState(result.stdout, spec.address) ?? null);
}

/**
 * Deleting an IPv4 address has two side effects this undoes. A primary takes the secondaries of its
 * subnet with it unless the device promotes one (`promote_secondaries`): for the moment of this delete,
 * it does; a replacement made before its predecessor goes (10.0.0.2/24 → 10.0.0.3/24) is such a
 * secondary. And the last one takes every IPv4 route through the device (see routesToRestore).
 */
function deleteAddress(host: Host, spec: AddressSpec): Promise<void> {
  // Two deletes on one device would each see the other's address, or restore the other's temporary setting.
  return oneAtATime(`${host.label} ${spec.namespace ?? ""} ${spec.device}`, () => deleteFromDevice(host, spec));
}

async function deleteFromDevice(host: Host, spec: AddressSpec): Promise<void> {
  const result = await runUnlessGone(host, showArgv(spec), { readOnly: true });
  if (!result) return;
  const addresses = parseAddresses(result.stdout);
  if (!addresses.includes(canonicalCidr(spec.address))) return;
  if (parseCidr(spec.address)!.family === 4 && !addresses.some((a) => a !== canonicalCidr(spec.address) && parseCidr(a)!.family === 4)) {
    // The device or its namespace may go meanwhile (a program without dependencies deletes them side by
    // side, as one made by `pulumi import` does): the address and its routes went with it.
    const before = await runUnlessGone(host, deviceRoutesArgv(spec), { readOnly: true });
    if (!before) return;
    await runUnlessGone(host, addressArgv("del", spec));
    const after = await runUnlessGone(host, deviceRoutesArgv(spec), { readOnly: true });
    if (!after) return;
    // A route that needed the address (a gateway in its subnet) cannot come back, and should not.
    for (const argv of routesToRestore(before.stdout, after.stdout, spec)) await host.run(argv, { allowFailure: true });
    return;
  }
  if (sameSubnet(addresses, spec.address).length === 0) {
    await runUnlessGone(host, addressArgv("del", spec));
    return;
  }
  await runUnlessGone(host, promotingDeleteArgv(spec, lockWaitSeconds(host.commandTimeoutSeconds)));
}

/**
 * Deletes the address with the device's `promote_secondaries` on for that moment only, as one remote
 * script under the host's record lock: another stack's delete on the same device (another process, which
 * `oneAtATime` does not see) cannot read the temporary 1 as the value to put back.
 */
const PROMOTING_DELETE = `wait=$1 key=$2
shift 2
${TAKE_HOST_LOCK} || exit
before=$(sysctl -n "$key") || exit
sysctl -q -w "$key=1" || exit
"$@"
deleted=$?
sysctl -q -w "$key=$before"
exit $deleted`;

export function promotingDeleteArgv(spec: AddressSpec, lockWait: number): Argv {
  // The slash form: a device name may hold dots (eth0.100).
  const key = `net/ipv4/conf/${spec.device}/promote_secondaries`;
  return inNamespace(spec.namespace, [
    "sh",
    "-c",
    PROMOTING_DELETE,
    "sh",
    String(lockWait),
    key,
    ...addressArgv("del", { ...spec, namespace: undefined }),
  ]);
}

/** Where the address records its owner (owner.ts): an address has no tag of its own. */
export const recordPath = (spec: AddressSpec) => ownerRecordPath("addr", spec.namespace, spec.device, spec.address);

/** The address and its owner record. */
async function removeAddress(host: Host, spec: AddressSpec, owner: string | undefined): Promise<void> {
  await deleteAddress(host, spec);
  for (const argv of removeOwnerRecordArgvs(recordPath(spec), owner)) await host.run(argv);
}

const DAD_WAIT_MS = 5000;

/**
 * A new IPv6 address is tentative until duplicate address detection ends (about a second on a link
 * with carrier); until then the kernel refuses it as a route's source or a bind address. Like CNI's
 * SettleAddresses, create waits for it. Without carrier the detection itself waits: nothing to wait for.
 */
async function settle(host: Host, spec: AddressSpec): Promise<void> {
  const deadline = Date.now() + DAD_WAIT_MS;
  for (;;) {
    const state = await addressState(host, spec);
    if (!state?.tentative || !state.carrier) return;
    if (state.dadFailed)
      throw new Error(
        `${host.label}: ${spec.address} on "${spec.device}" is in use elsewhere on the link (duplicate address detection failed)`,
      );
    if (Date.now() > deadline) {
      throw new Error(
        `${host.label}: ${spec.address} on "${spec.device}" is still tentative after ${DAD_WAIT_MS / 1000} s of duplicate address ` +
          `detection`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export const addressKind = defineKind({
  name: "Address",
  description: "An IP address with its prefix length on an interface (`ip addr add`).",
  shape: {
    device: interfaceName.describe("Interface to put the address on."),
    address: cidr.describe("Address with prefix length, e.g. 192.168.15.1/24 or 2001:db8::1/64."),
    namespace: namespaceName.optional().describe("Namespace of the interface; the host's own when unset."),
    suspended: z.boolean().optional().describe(`${SUSPENDED} (A Lab sets it on IPv6 addresses only: IPv4 ones stay on a down interface.)`),
  },
  replaceOn: ["device", "address", "namespace"],
  // The kernel holds an address once per device, whatever its prefix length: 2001:db8::1/64 → /48 goes first.
  collides: (olds, news) =>
    olds.namespace === news.namespace &&
    olds.device === news.device &&
    parseCidr(String(olds.address))?.address === parseCidr(String(news.address))?.address,
  adoptable: true,
  importing: {
    idForm: "[NAMESPACE]/DEVICE/ADDRESS/PREFIX",
    identify(id) {
      const parts = splitNamespace(id);
      const slash = parts ? parts.rest.indexOf("/") : -1;
      return parts && slash > 0
        ? { namespace: parts.namespace, device: parts.rest.slice(0, slash), address: parts.rest.slice(slash + 1) }
        : undefined;
    },
  },
  async create(host, spec, adopt, owner) {
    const id = `${spec.namespace ?? ""}/${spec.device}/${spec.address}`;
    if (spec.suspended) return { id, observed: {} };
    await addOwned(host, spec, adopt, owner);
    return { id, observed: {} };
  },
  async read(host, _id, olds) {
    const spec = olds as unknown as AddressSpec;
    if (olds.suspended) return {};
    const link = (await listLinks(host)).get(spec.namespace ?? "")?.find((l) => l.ifname === spec.device);
    return link && addressOn(link, spec.address) ? {} : undefined;
  },
  async update(host, _id, olds, news) {
    // Every other property replaces; credentials change in place, and they live in the connection.
    const owner = objectOwner(addressKind.replaceOn, olds);
    if (news.suspended && !olds.suspended) await removeAddress(host, news, owner);
    if (!news.suspended && olds.suspended) await addOwned(host, news, false, owner);
    return {};
  },
  async delete(host, _id, olds) {
    const spec = olds as unknown as AddressSpec;
    if (takenOver(await recordedTag(host, recordPath(spec)), addressKind.replaceOn, olds)) return;
    await removeAddress(host, spec, olds.owner as string | undefined);
  },
  async tagged(_host, source) {
    return ownerRecords(await source.records(), "addr").map(({ owner, namespace, names: [device, name] }) => {
      const address = networkFromRecordName(name);
      return {
        owner,
        id: `${namespace ?? ""}/${device}/${address}`,
        olds: { namespace, device, address, owner },
        what: `address ${address} on "${device}"${inNamespaceWords(namespace)}`,
      };
    });
  },
});

/** Adds the address with its owner record, or takes over one that is there (see mayTakeOver), and waits for it to settle. */
async function addOwned(host: Host, spec: AddressSpec, adopt: boolean, owner: string | undefined): Promise<void> {
  const record = recordPath(spec);
  const exists = Boolean(await addressState(host, spec));
  const what = `address ${spec.address} on "${spec.device}"`;
  const { ours } = exists ? mayTakeOver(host.label, what, await recordedTag(host, record), owner, adopt) : { ours: false };
  if (!exists) await host.run(inOneStep(addressArgv("add", spec), ...writeOwnerRecordArgvs(record, owner)));
  else if (!ours) for (const argv of writeOwnerRecordArgvs(record, owner)) await host.run(argv);
  if (!exists || ours) {
    try {
      await settle(host, spec);
    } catch (err) {
      await removeAddress(host, spec, owner).catch((cleanup) => {
        throw partlyMade(err, what, cleanup);
      });
      throw err;
    }
  }
}
