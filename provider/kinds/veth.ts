import { z } from "zod";
import { AlreadyExistsError } from "../errors";
import { interfaceName, mtu, namespaceName } from "../fields";
import type { Argv, Host } from "../host";
import { linkDeleteArgv, readLink, reconcileLink, runUnlessGone } from "../iproute";
import { defineKind } from "../kind";

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

/** Both ends are made in one command, each directly in its namespace: nothing half-placed. */
export function vethAddArgv(spec: VethSpec): Argv {
  const end = (name: string, namespace?: string) => [
    "name",
    name,
    ...(namespace ? ["netns", namespace] : []),
    ...(spec.mtu !== undefined ? ["mtu", String(spec.mtu)] : []),
  ];
  return ["ip", "link", "add", ...end(spec.name, spec.namespace), "type", "veth", "peer", ...end(spec.peer.name, spec.peer.namespace)];
}

async function observe(host: Host, spec: Pick<VethSpec, "name" | "namespace" | "peer">) {
  const [near, far] = await Promise.all([
    readLink(host, spec.namespace, spec.name),
    readLink(host, spec.peer.namespace, spec.peer.name),
  ]);
  if (near?.kind !== "veth" || far?.kind !== "veth") return undefined;
  return {
    mtu: near.mtu,
    up: near.up,
    peer: { ...spec.peer, master: far.master, up: far.up, mtu: far.mtu },
  };
}

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
  description:
    "A veth pair (a virtual cable). Each end may live in a namespace; the other end may be enslaved to a bridge.",
  shape: {
    name: interfaceName.describe("Name of this end."),
    namespace: namespaceName.optional().describe("Namespace of this end; the host's own when unset."),
    mtu: mtu.optional().describe("MTU of both ends; the kernel's default when unset."),
    up: z.boolean().default(true).describe("Administrative state of this end."),
    peer,
  },
  replaceOn: ["name", "namespace", "peer.name", "peer.namespace"],
  resetTo: { mtu: 1500, "peer.master": null },
  // The other end's MTU is read back as peer.mtu; when it strays from `mtu`, the pair is updated.
  drift: (_id, olds, news) =>
    typeof news.mtu === "number" && (olds.peer as { mtu?: number } | undefined)?.mtu !== news.mtu ? ["peer"] : [],
  adoptable: true,
  async create(host, spec, adopt) {
    const [near, far] = await Promise.all([
      readLink(host, spec.namespace, spec.name),
      readLink(host, spec.peer.namespace, spec.peer.name),
    ]);
    const existing = near ?? far;
    if (existing && !adopt) throw new AlreadyExistsError(host.label, `interface "${existing.name}"`);
    if (existing && (near?.kind !== "veth" || far?.kind !== "veth")) {
      throw new Error(`${host.label}: cannot adopt: "${spec.name}" and "${spec.peer.name}" are not both ends of a veth pair`);
    }
    if (!existing) await host.run(vethAddArgv(spec));
    try {
      await reconcile(host, spec);
      return { id: `${spec.namespace ?? ""}/${spec.name}`, observed: (await observe(host, spec))! };
    } catch (err) {
      // Deleting one end removes both.
      if (!existing) await host.run(linkDeleteArgv(spec.namespace, spec.name), { allowFailure: true });
      throw err;
    }
  },
  read: (host, _id, olds) => observe(host, olds as unknown as VethSpec),
  async update(host, _id, _olds, news) {
    await reconcile(host, news);
    return (await observe(host, news)) ?? {};
  },
  async delete(host, _id, olds) {
    // Only the pair itself: a link that took the name since is someone else's.
    if (await observe(host, olds as unknown as VethSpec)) {
      await runUnlessGone(host, linkDeleteArgv(olds.namespace as string | undefined, olds.name as string));
    }
  },
});
