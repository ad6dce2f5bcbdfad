import { AlreadyExistsError } from "../errors";
import { canonicalAddress, canonicalCidr, cidr, interfaceName, namespaceName, parseCidr } from "../fields";
import { Argv, Host, inNamespace } from "../host";
import { runUnlessGone } from "../iproute";
import { defineKind } from "../kind";

interface AddressSpec {
  device: string;
  address: string;
  namespace?: string;
}

export function parseAddresses(stdout: string): string[] {
  const links = JSON.parse(stdout.trim() || "[]") as { addr_info?: { local: string; prefixlen: number }[] }[];
  return links.flatMap((l) => (l.addr_info ?? []).map((a) => canonicalCidr(`${a.local}/${a.prefixlen}`)));
}

export const addressArgv = (verb: "add" | "del", spec: AddressSpec): Argv =>
  inNamespace(spec.namespace, ["ip", "addr", verb, spec.address, "dev", spec.device]);

/** true / false, or undefined when the device (or its namespace) is gone. */
async function present(host: Host, spec: AddressSpec): Promise<boolean | undefined> {
  const result = await runUnlessGone(host, inNamespace(spec.namespace, ["ip", "-j", "addr", "show", "dev", spec.device]));
  return result && parseAddresses(result.stdout).includes(canonicalCidr(spec.address));
}

export const addressKind = defineKind({
  name: "Address",
  description: "An IP address with its prefix length on an interface (`ip addr add`).",
  shape: {
    device: interfaceName.describe("Interface to put the address on."),
    address: cidr.describe("Address with prefix length, e.g. 192.168.15.1/24 or 2001:db8::1/64."),
    namespace: namespaceName.optional().describe("Namespace of the interface; the host's own when unset."),
  },
  replaceOn: ["device", "address", "namespace"],
  adoptable: true,
  async create(host, spec, adopt) {
    const exists = await present(host, spec);
    if (exists && !adopt) throw new AlreadyExistsError(host.label, `address ${spec.address} on "${spec.device}"`);
    if (!exists) await host.run(addressArgv("add", spec));
    return { id: `${spec.namespace ?? ""}/${spec.device}/${spec.address}`, observed: {} };
  },
  async read(host, _id, olds) {
    return (await present(host, olds as unknown as AddressSpec)) ? {} : undefined;
  },
  async update() {
    // Every property replaces; only credentials change in place, and they live in the connection.
    return {};
  },
  async delete(host, _id, olds) {
    await runUnlessGone(host, addressArgv("del", olds as unknown as AddressSpec));
  },
});
