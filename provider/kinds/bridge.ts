import { z } from "zod";
import { AlreadyExistsError } from "../errors";
import { interfaceName, mtu, namespaceName } from "../fields";
import { Argv, Host, inNamespace } from "../host";
import { linkDeleteArgv, LinkState, readLink, reconcileLink, runUnlessGone } from "../iproute";
import { defineKind } from "../kind";

export function bridgeAddArgv(spec: { name: string; namespace?: string; mtu?: number }): Argv {
  const argv = ["ip", "link", "add", "name", spec.name];
  if (spec.mtu !== undefined) argv.push("mtu", String(spec.mtu));
  return inNamespace(spec.namespace, [...argv, "type", "bridge"]);
}

const observed = (link: LinkState) => ({ mtu: link.mtu, up: link.up });

async function readBridge(host: Host, namespace: string | undefined, name: string) {
  const link = await readLink(host, namespace, name);
  return link?.kind === "bridge" ? link : undefined;
}

export const bridgeKind = defineKind({
  name: "Bridge",
  description: "A Linux bridge (`ip link add NAME type bridge`), optionally inside a namespace.",
  shape: {
    name: interfaceName.describe("Bridge interface name (at most 15 bytes)."),
    namespace: namespaceName.optional().describe("Namespace to create the bridge in; the host's own when unset."),
    mtu: mtu.optional().describe("MTU; the kernel's default when unset."),
    up: z.boolean().default(true).describe("Administrative state: up or down."),
  },
  replaceOn: ["name", "namespace"],
  resetTo: { mtu: 1500 },
  adoptable: true,
  async create(host, spec, adopt) {
    const existing = await readLink(host, spec.namespace, spec.name);
    if (existing && !adopt) throw new AlreadyExistsError(host.label, `interface "${spec.name}"`);
    if (existing && existing.kind !== "bridge") {
      throw new Error(`${host.label}: cannot adopt "${spec.name}": it is a ${existing.kind ?? "plain"} link, not a bridge`);
    }
    if (!existing) await host.run(bridgeAddArgv(spec));
    try {
      const link = (await readLink(host, spec.namespace, spec.name))!;
      await reconcileLink(host, spec.namespace, spec.name, link, { up: spec.up, mtu: spec.mtu });
      return { id: spec.name, observed: observed((await readLink(host, spec.namespace, spec.name))!) };
    } catch (err) {
      if (!existing) await host.run(linkDeleteArgv(spec.namespace, spec.name), { allowFailure: true });
      throw err;
    }
  },
  async read(host, _id, olds) {
    const link = await readBridge(host, olds.namespace as string | undefined, olds.name as string);
    return link && observed(link);
  },
  async update(host, _id, _olds, news) {
    const link = await readBridge(host, news.namespace, news.name);
    if (!link) throw new Error(`${host.label}: bridge "${news.name}" is gone; run \`pulumi refresh\` to recreate it`);
    await reconcileLink(host, news.namespace, news.name, link, { up: news.up, mtu: news.mtu });
    return observed((await readLink(host, news.namespace, news.name))!);
  },
  async delete(host, _id, olds) {
    const namespace = olds.namespace as string | undefined;
    // A link of this name that is no longer a bridge is someone else's now.
    if (await readBridge(host, namespace, olds.name as string)) await runUnlessGone(host, linkDeleteArgv(namespace, olds.name as string));
  },
});
