import { z } from "zod";
import { partlyMade } from "../errors";
import { namespaceName } from "../fields";
import type { Host } from "../host";
import { hold, holderPath, namespaceIdentity, recordedHolders, release } from "../holders";
import { LinkSource, listedLinks, liveLinks, readLink, reconcileLink } from "../iproute";
import { defineKind, neverCollides } from "../kind";
import { ownerToken } from "../owner";

const recordPath = (name: string) => holderPath("netns", undefined, name);

async function setLoopback(host: Host, name: string, up: boolean): Promise<void> {
  await reconcileLink(host, name, "lo", (await readLink(host, name, "lo")) ?? {}, { up });
}

async function observe(links: LinkSource, name: string) {
  const lo = await links.link(name, "lo");
  return lo ? { loopbackUp: lo.up } : undefined;
}

export const namespaceKind = defineKind({
  name: "Namespace",
  description:
    "A named network namespace (`ip netns add`), with its loopback interface brought up. Programs that share one " +
    "(one creates it, others adopt it) are recorded as its holders; the last one to go deletes it.",
  shape: {
    name: namespaceName.describe("Namespace name, as in `ip netns add NAME`."),
    loopbackUp: z.boolean().default(true).describe("Bring the namespace's `lo` up."),
  },
  replaceOn: ["name"],
  collides: neverCollides,
  outputs: { holder: z.string().describe("This resource's token in the holder record on the host (under /run/pulumi-netns).") },
  adoptable: true,
  // Imported, it holds no record on the host: destroy deletes it unless another program holds it.
  importing: { idForm: "NAME", identify: (id) => ({ name: id }) },
  async create(host, spec, adopt, owner) {
    const holder = ownerToken(owner);
    let made = false;
    try {
      ({ made } = await makeNamespace(host, spec.name, holder, owner, adopt));
      await setLoopback(host, spec.name, spec.loopbackUp);
      return { id: spec.name, observed: { ...(await observe(liveLinks(host), spec.name))!, holder } };
    } catch (err) {
      // What this resource made goes again; an adopted namespace stays.
      await releaseNamespace(host, spec.name, holder, made).catch((cleanup) => {
        throw partlyMade(err, `network namespace "${spec.name}"`, cleanup);
      });
      throw err;
    }
  },
  // A namespace that is gone has no lo in the listing either.
  read: (host, id) => observe(listedLinks(host), id),
  async update(host, id, olds, news) {
    await setLoopback(host, id, news.loopbackUp);
    return (await observe(liveLinks(host), id)) ?? {};
  },
  async delete(host, id, olds) {
    await releaseNamespace(host, id, olds.holder as string | undefined, true);
  },
  async tagged(_host, source) {
    return recordedHolders(await source.records(), "netns").map(({ record, token, owner }) => ({
      owner,
      id: record.names[0],
      olds: { holder: token },
      what: `network namespace "${record.names[0]}"`,
    }));
  },
});

/** Makes the namespace, or holds it when this holder made it already (or with `adopt`); `made`: this holder made it. */
export function makeNamespace(
  host: Host,
  name: string,
  holder: string,
  owner: string | undefined,
  adopt: boolean,
): Promise<{ made: boolean }> {
  return hold(
    host,
    recordPath(name),
    holder,
    owner ?? "Namespace",
    `network namespace "${name}"`,
    () => namespaceIdentity(host, name),
    ["ip", "netns", "add", name],
    adopt,
  );
}

/** Leaves the namespace's holders; the last one deletes it (and with it everything inside). */
export async function releaseNamespace(host: Host, name: string, holder: string | undefined, deleteIfLast: boolean) {
  await release(host, recordPath(name), holder, () => namespaceIdentity(host, name), ["ip", "netns", "del", name], deleteIfLast);
}
