import { z } from "zod";
import { inNamespaceWords, partlyMade } from "../errors";
import { interfaceName, mtu, namespaceName } from "../fields";
import { Argv, Host, inNamespace, inOneStep } from "../host";
import {
  IpLinkJson,
  linkDeleteArgv,
  LinkSource,
  LinkState,
  linkState,
  listedLinks,
  listLinks,
  liveLinks,
  readLink,
  reconcileLink,
  runUnlessGone,
} from "../iproute";
import { defineKind, namespacedIdentity, Props } from "../kind";
import { mayTakeOver, setAliasArgv, taggedLinks, takenOver } from "../owner";

const peer = z
  .object({
    name: interfaceName.describe("Name of the other end."),
    namespace: namespaceName.optional().describe("Namespace of the other end; the host's own when unset."),
    master: interfaceName.optional().describe("Bridge to enslave the other end to (in the other end's namespace)."),
    up: z.boolean().default(true).describe("Administrative state of the other end."),
  })
  .describe("The other end of the cable.");

interface VethSpec {
  name: string;
  namespace?: string;
  mtu?: number;
  up: boolean;
  peer: z.infer<typeof peer>;
}

/**
 * Both ends are made in one command, each directly in its namespace: nothing half-placed. The command
 * runs in the namespace of the end it names first, because older kernels (6.1, Debian 12's) look that
 * name up where the command runs: `name eth0 netns NS` failed with "File exists" on a host with an eth0.
 * The host's own namespace has no name to give as `netns`, so an end there is named first.
 */
export function vethAddArgv(spec: VethSpec): Argv {
  const near = { name: spec.name, namespace: spec.namespace };
  const [first, second] = spec.namespace && !spec.peer.namespace ? [spec.peer, near] : [near, spec.peer];
  const mtu = spec.mtu !== undefined ? ["mtu", String(spec.mtu)] : [];
  return inNamespace(first.namespace, [
    "ip",
    "link",
    "add",
    "name",
    first.name,
    ...mtu,
    "type",
    "veth",
    "peer",
    "name",
    second.name,
    ...(second.namespace ? ["netns", second.namespace] : []),
    ...mtu,
  ]);
}

/** Whether two links are the two ends of one veth pair (each names or indexes the other). */
export function arePeers(a: LinkState, b: LinkState, sameNamespace: boolean): boolean {
  if (a.kind !== "veth" || b.kind !== "veth" || !a.peer || !b.peer) return false;
  if (sameNamespace) return !a.peer.otherNamespace && !b.peer.otherNamespace && a.peer.name === b.name && b.peer.name === a.name;
  return a.peer.otherNamespace && b.peer.otherNamespace && a.peer.ifindex === b.ifindex && b.peer.ifindex === a.ifindex;
}

interface End {
  namespace?: string;
  link: LinkState;
}

const sameNamespace = (a?: string, b?: string) => (a ?? "") === (b ?? "");

/** The end called `name` that pairs with `end`, in whichever namespace it is now. */
async function findPeer(links: LinkSource, end: End, name: string): Promise<End | undefined> {
  const candidates = end.link.peer?.otherNamespace
    ? [undefined, ...(await links.namespaces())].filter((ns) => !sameNamespace(ns, end.namespace))
    : [end.namespace];
  for (const namespace of candidates) {
    const link = await links.link(namespace, name);
    if (link && arePeers(end.link, link, sameNamespace(namespace, end.namespace))) return { namespace, link };
  }
  return undefined;
}

/** The end of a listing of every namespace that pairs with `near` (in `namespace`), wherever it is. */
function peerIn(links: Map<string, IpLinkJson[]>, namespace: string | undefined, near: LinkState): End | undefined {
  for (const [listedIn, listed] of links) {
    const link = listed.map(linkState).find((candidate) => arePeers(near, candidate, sameNamespace(namespace, listedIn)));
    if (link) return { namespace: listedIn || undefined, link };
  }
  return undefined;
}

/**
 * Both ends of the pair, where they are now. An end moved to another namespace by hand
 * (`ip link set NAME netns OTHER`) is found through the other end; the pair is gone only when
 * neither end can be found as the other's peer.
 */
async function locate(
  links: LinkSource,
  spec: Pick<VethSpec, "name" | "namespace" | "peer">,
): Promise<{ near: End; far: End } | undefined> {
  const [nearLink, farLink] = await Promise.all([links.link(spec.namespace, spec.name), links.link(spec.peer.namespace, spec.peer.name)]);
  const near = nearLink && { namespace: spec.namespace, link: nearLink };
  const far = farLink && { namespace: spec.peer.namespace, link: farLink };
  if (near && far && arePeers(near.link, far.link, sameNamespace(near.namespace, far.namespace))) return { near, far };
  const movedNear = far?.link.kind === "veth" ? await findPeer(links, far, spec.name) : undefined;
  if (movedNear) return { near: movedNear, far: far! };
  const movedFar = near?.link.kind === "veth" ? await findPeer(links, near, spec.peer.name) : undefined;
  return movedFar && { near: near!, far: movedFar };
}

async function observe(links: LinkSource, spec: Pick<VethSpec, "name" | "namespace" | "peer">) {
  const pair = await locate(links, spec);
  if (!pair) return undefined;
  const { near, far } = pair;
  return {
    namespace: near.namespace,
    mtu: near.link.mtu,
    up: near.link.up,
    peer: { ...spec.peer, namespace: far.namespace, master: far.link.master, up: far.link.up, mtu: far.link.mtu },
  };
}

const misplaced = (pair: { near: End; far: End }, spec: VethSpec) =>
  !sameNamespace(pair.near.namespace, spec.namespace) || !sameNamespace(pair.far.namespace, spec.peer.namespace);

async function reconcile(host: Host, spec: VethSpec): Promise<void> {
  const near = await readLink(host, spec.namespace, spec.name);
  const far = await readLink(host, spec.peer.namespace, spec.peer.name);
  if (!near || !far) throw new Error(`${host.label}: veth "${spec.name}" is gone; run \`pulumi refresh\` to recreate it`);
  await reconcileLink(host, spec.peer.namespace, spec.peer.name, far, {
    mtu: spec.mtu,
    master: spec.peer.master,
    up: spec.peer.up,
  });
  await reconcileLink(host, spec.namespace, spec.name, near, { mtu: spec.mtu, up: spec.up });
}

export const vethKind = defineKind({
  name: "Veth",
  description: "A veth pair (a virtual cable). Each end may live in a namespace; the other end may be enslaved to a bridge.",
  shape: {
    name: interfaceName.describe("Name of this end."),
    namespace: namespaceName.optional().describe("Namespace of this end; the host's own when unset."),
    mtu: mtu.optional().describe("MTU of both ends; the kernel's default when unset."),
    up: z.boolean().default(true).describe("Administrative state of this end."),
    peer,
  },
  replaceOn: ["name", "namespace", "peer.name", "peer.namespace"],
  resetTo: { mtu: 1500, "peer.master": null },
  collides(olds, news) {
    const ends = (p: Props) => {
      const peer = (p.peer ?? {}) as Props;
      return [`${p.namespace ?? ""}/${p.name}`, `${peer.namespace ?? ""}/${peer.name}`];
    };
    return ends(olds).some((end) => ends(news).includes(end));
  },
  // The other end's MTU is read back as peer.mtu; when it strays from `mtu`, the pair is updated. An
  // end found in another namespace is drift too, also when the wanted namespace is the host's own (unset).
  drift(_id, olds, news) {
    const oldPeer = olds.peer as { mtu?: number; namespace?: string } | undefined;
    const newPeer = news.peer as { namespace?: string } | undefined;
    const namespaceMoved = !sameNamespace(olds.namespace as string | undefined, news.namespace as string | undefined);
    const peerMoved = !sameNamespace(oldPeer?.namespace, newPeer?.namespace);
    const peerMtu = typeof news.mtu === "number" && oldPeer?.mtu !== news.mtu;
    return [...(namespaceMoved ? ["namespace"] : []), ...(peerMoved || peerMtu ? ["peer"] : [])];
  },
  adoptable: true,
  importing: {
    idForm: "[NAMESPACE]/NAME (either end)",
    identify: (id) => namespacedIdentity(id, "name"),
    // The other end, found by the kernel's pairing, wherever it is.
    async discover(host, _id, identity) {
      const { name, namespace } = identity as { name: string; namespace?: string };
      const links = await listLinks(host);
      const near = links.get(namespace ?? "")?.find((link) => link.ifname === name);
      if (!near) return undefined;
      const end = linkState(near);
      if (end.kind !== "veth")
        throw new Error(`${host.label}: interface "${name}"${inNamespaceWords(namespace)} is a ${end.kind ?? "plain"} link, not a veth`);
      const far = peerIn(links, namespace, end);
      if (!far)
        throw new Error(
          `${host.label}: the other end of veth "${name}"${inNamespaceWords(namespace)} is in a namespace without a name (none under ` +
            `/var/run/netns)`,
        );
      return { ...identity, peer: { name: far.link.name, namespace: far.namespace } };
    },
  },
  async create(host, spec, adopt, owner) {
    const [near, far] = await Promise.all([readLink(host, spec.namespace, spec.name), readLink(host, spec.peer.namespace, spec.peer.name)]);
    const existing = near ?? far;
    // The near end carries the owner; an interrupted create of this resource left its own pair.
    const { ours } = existing ? mayTakeOver(host.label, `interface "${existing.name}"`, existing.alias, owner, adopt) : { ours: false };
    if (existing && !(near && far && arePeers(near, far, sameNamespace(spec.namespace, spec.peer.namespace)))) {
      throw new Error(`${host.label}: cannot adopt: "${spec.name}" and "${spec.peer.name}" are not the two ends of one veth pair`);
    }
    const tag = owner === undefined ? [] : [setAliasArgv(spec.namespace, spec.name, owner)];
    if (!existing) await host.run(inOneStep(vethAddArgv(spec), ...tag));
    else if (!ours && tag.length > 0) await host.run(tag[0]);
    try {
      await reconcile(host, spec);
      return { id: `${spec.namespace ?? ""}/${spec.name}`, observed: (await observe(liveLinks(host), spec))! };
    } catch (err) {
      // Deleting one end removes both; an adopted pair stays.
      if (!existing || ours) {
        await runUnlessGone(host, linkDeleteArgv(spec.namespace, spec.name)).catch((cleanup) => {
          throw partlyMade(err, `veth "${spec.name}"`, cleanup);
        });
      }
      throw err;
    }
  },
  read: (host, _id, olds) => observe(listedLinks(host), olds as unknown as VethSpec),
  async update(host, _id, _olds, news) {
    const pair = await locate(liveLinks(host), news);
    if (pair && misplaced(pair, news)) {
      // An end was moved by hand. Moving it back would need a name for the host's own namespace; a new
      // cable in the right places is what a replacement would give (addresses went with the move anyway).
      await host.run(linkDeleteArgv(pair.near.namespace, pair.near.link.name));
      await host.run(vethAddArgv(news));
    }
    await reconcile(host, news);
    return (await observe(liveLinks(host), news)) ?? {};
  },
  async delete(host, _id, olds) {
    // Only the pair itself, wherever its ends are now: a link that took the name since is someone else's,
    // and so is a pair another owner took over.
    const pair = await locate(liveLinks(host), olds as unknown as VethSpec);
    if (pair && !takenOver(pair.near.link.alias, vethKind.replaceOn, olds))
      await runUnlessGone(host, linkDeleteArgv(pair.near.namespace, pair.near.link.name));
  },
  async tagged(_host, source) {
    const links = await source.links();
    return taggedLinks(links, "veth").flatMap(({ owner, namespace, link }) => {
      const near = linkState(link);
      const far = peerIn(links, namespace, near);
      return far
        ? [
            {
              owner,
              id: `${namespace ?? ""}/${near.name}`,
              olds: { name: near.name, namespace, peer: { name: far.link.name, namespace: far.namespace }, owner },
              what: `veth "${near.name}"${inNamespaceWords(namespace)} (its peer "${far.link.name}"${inNamespaceWords(far.namespace)})`,
            },
          ]
        : [];
    });
  },
});
