import { z } from "zod";
import { inNamespaceWords, partlyMade } from "../errors";
import { interfaceName, mtu, namespaceName } from "../fields";
import { Argv, Host, inNamespace } from "../host";
import { hold, holderPath, namespaceIdentity, recordedHolders, release } from "../holders";
import {
  linkDeleteArgv,
  linkSetArgv,
  LinkSource,
  LinkState,
  listedLinks,
  liveLinks,
  parseLinks,
  readLink,
  reconcileLink,
} from "../iproute";
import { defineKind, neverCollides, namespacedIdentity, SET_PROPERTIES } from "../kind";
import { ownerToken } from "../owner";

/** Without the MTU: one given at creation does not stick (see pinMtuArgvs). */
export function bridgeAddArgv(spec: { name: string; namespace?: string }): Argv {
  return inNamespace(spec.namespace, ["ip", "link", "add", "name", spec.name, "type", "bridge"]);
}

/**
 * A bridge follows its ports' smallest MTU until an MTU is set on it, and neither an MTU given at
 * creation nor a set to the value it already has counts: the first set goes through a neighbour value.
 */
export function pinMtuArgvs(namespace: string | undefined, name: string, mtu: number): Argv[] {
  const neighbour = mtu > 68 ? mtu - 1 : mtu + 1;
  return [linkSetArgv(namespace, name, { mtu: neighbour }), linkSetArgv(namespace, name, { mtu })];
}

const observed = (link: LinkState) => ({ mtu: link.mtu, up: link.up });

async function readBridge(links: LinkSource, namespace: string | undefined, name: string) {
  const link = await links.link(namespace, name);
  return link?.kind === "bridge" ? link : undefined;
}

const recordPath = (spec: { name: string; namespace?: string }) => holderPath("link", spec.namespace, spec.name);

/** NAME, or NAMESPACE/NAME for a bridge in a namespace. */
const bridgeId = (spec: { name: string; namespace?: string }) => (spec.namespace ? `${spec.namespace}/${spec.name}` : spec.name);

/** What a bridge whose MTU was never set would have: its smallest port's, 1500 without ports. */
async function portsMtu(host: Host, namespace: string | undefined, name: string): Promise<number> {
  const ports = parseLinks(
    (await host.run(inNamespace(namespace, ["ip", "-j", "link", "show", "master", name]), { readOnly: true })).stdout,
  );
  return ports.length > 0 ? Math.min(...ports.map((port) => port.mtu)) : 1500;
}

/** A bridge made again under the same name (or in a namespace made again) is another object. */
async function identity(host: Host, namespace: string | undefined, link: LinkState | undefined): Promise<string | undefined> {
  const scope = link && (await namespaceIdentity(host, namespace));
  return scope && `${scope}/${link!.ifindex}`;
}

export const bridgeKind = defineKind({
  name: "Bridge",
  description:
    "A Linux bridge (`ip link add NAME type bridge`), optionally inside a namespace. Programs that share one " +
    "(one creates it, others adopt it) are recorded as its holders; the last one to go deletes it.",
  shape: {
    name: interfaceName.describe("Bridge interface name (at most 15 bytes)."),
    namespace: namespaceName.optional().describe("Namespace to create the bridge in; the host's own when unset."),
    mtu: mtu.optional().describe("MTU; the kernel's default when unset."),
    up: z.boolean().default(true).describe("Administrative state: up or down."),
  },
  replaceOn: ["name", "namespace"],
  collides: neverCollides,
  // A set MTU stays set: unset, it becomes what the kernel would choose now (see portsMtu).
  resetTo: { mtu: null },
  outputs: { holder: z.string().describe("This resource's token in the holder record on the host (under /run/pulumi-netns).") },
  adoptable: true,
  // Imported, it holds no record on the host: destroy deletes it unless another program holds it.
  importing: { idForm: "[NAMESPACE/]NAME", identify: (id) => (id.includes("/") ? namespacedIdentity(id, "name") : { name: id }) },
  async create(host, spec, adopt, owner) {
    const holder = ownerToken(owner);
    let made = false;
    try {
      ({ made } = await holdBridge(host, spec, holder, owner, adopt));
      if (spec.mtu !== undefined) for (const argv of pinMtuArgvs(spec.namespace, spec.name, spec.mtu)) await host.run(argv);
      const link = (await readLink(host, spec.namespace, spec.name))!;
      await reconcileLink(host, spec.namespace, spec.name, link, { up: spec.up, mtu: spec.mtu });
      return { id: bridgeId(spec), observed: { ...observed((await readLink(host, spec.namespace, spec.name))!), holder } };
    } catch (err) {
      // What this resource made goes again; an adopted bridge stays.
      await releaseBridge(host, spec, holder, made).catch((cleanup) => {
        throw partlyMade(err, `bridge "${spec.name}"`, cleanup);
      });
      throw err;
    }
  },
  async read(host, _id, olds) {
    const link = await readBridge(listedLinks(host), olds.namespace as string | undefined, olds.name as string);
    return link && observed(link);
  },
  async update(host, _id, olds, news) {
    const link = await readBridge(liveLinks(host), news.namespace, news.name);
    if (!link) throw new Error(`${host.label}: bridge "${news.name}" is gone; run \`pulumi refresh\` to recreate it`);
    // An MTU managed from now on is pinned first.
    const pinned = (olds[SET_PROPERTIES] as string[]).includes("mtu");
    if (news.mtu !== undefined && !pinned) for (const argv of pinMtuArgvs(news.namespace, news.name, news.mtu)) await host.run(argv);
    const mtu = (news.mtu as number | null | undefined) === null ? await portsMtu(host, news.namespace, news.name) : news.mtu;
    await reconcileLink(host, news.namespace, news.name, link, { up: news.up, mtu });
    return observed((await readLink(host, news.namespace, news.name))!);
  },
  async delete(host, _id, olds) {
    const spec = { name: olds.name as string, namespace: olds.namespace as string | undefined };
    await releaseBridge(host, spec, olds.holder as string | undefined, true);
  },
  async tagged(_host, source) {
    return recordedHolders(await source.records(), "link").map(({ record, token, owner }) => ({
      owner,
      id: bridgeId({ name: record.names[0], namespace: record.namespace }),
      olds: { name: record.names[0], namespace: record.namespace, holder: token },
      what: `bridge "${record.names[0]}"${inNamespaceWords(record.namespace)}`,
    }));
  },
});

/**
 * Records `holder` as a holder of the bridge, making it when it is absent (holders.ts); a link of that name
 * that is no bridge is refused. Returns whether this holder made it.
 */
export async function holdBridge(
  host: Host,
  spec: { name: string; namespace?: string },
  holder: string,
  owner: string | undefined,
  adopt: boolean,
): Promise<{ made: boolean }> {
  const identify = async () => {
    const existing = await readLink(host, spec.namespace, spec.name);
    if (existing && existing.kind !== "bridge") {
      throw new Error(`${host.label}: cannot adopt "${spec.name}": it is a ${existing.kind ?? "plain"} link, not a bridge`);
    }
    return identity(host, spec.namespace, existing);
  };
  return hold(host, recordPath(spec), holder, owner ?? "Bridge", `interface "${spec.name}"`, identify, bridgeAddArgv(spec), adopt);
}

/** Leaves the bridge's holders; the last one deletes it. A link that is no longer a bridge is someone else's now. */
export async function releaseBridge(
  host: Host,
  spec: { name: string; namespace?: string },
  holder: string | undefined,
  deleteIfLast: boolean,
) {
  await release(
    host,
    recordPath(spec),
    holder,
    async () => identity(host, spec.namespace, await readBridge(liveLinks(host), spec.namespace, spec.name)),
    linkDeleteArgv(spec.namespace, spec.name),
    deleteIfLast,
  );
}
