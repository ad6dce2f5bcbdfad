import { z } from "zod";
import { AlreadyExistsError } from "../errors";
import { namespaceName } from "../fields";
import type { Host } from "../host";
import { hold, holderPath, namespaceIdentity, newHolderToken, release } from "../holders";
import { LinkSource, listedLinks, liveLinks, namespaceNames, readLink, reconcileLink } from "../iproute";
import { defineKind, neverCollides } from "../kind";

const recordPath = (name: string) => holderPath("netns", undefined, name);

async function namespaceExists(host: Host, name: string): Promise<boolean> {
  return (await namespaceNames(host)).includes(name);
}

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
  async create(host, spec, adopt) {
    const holder = newHolderToken();
    let created = false;
    // Runs again when another program changed the holders meanwhile (it may have deleted the namespace).
    // A failed hold removes what it made too: the catch below releases it.
    try {
      await hold(host, recordPath(spec.name), holder, "Namespace", async () => {
        const existed = await namespaceExists(host, spec.name);
        if (existed && !adopt && !created) throw new AlreadyExistsError(host.label, `network namespace "${spec.name}"`);
        if (!existed) {
          await host.run(["ip", "netns", "add", spec.name]);
          created = true;
        }
        return (await namespaceIdentity(host, spec.name))!;
      });
      await setLoopback(host, spec.name, spec.loopbackUp);
      return { id: spec.name, observed: { ...(await observe(liveLinks(host), spec.name))!, holder } };
    } catch (err) {
      // What we made goes again; an adopted namespace stays.
      await releaseNamespace(host, spec.name, holder, created).catch(() => undefined);
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
});

/** Leaves the namespace's holders; the last one deletes it (and with it everything inside). */
async function releaseNamespace(host: Host, name: string, holder: string | undefined, deleteIfLast: boolean) {
  await release(host, recordPath(name), holder, () => namespaceIdentity(host, name), ["ip", "netns", "del", name], deleteIfLast);
}
