// One resource per entry of the config `program`, in order. Values named in `flows` come from another
// resource's output, and `deps` become dependsOn, so the engine sees the graph a real program has.
import * as pulumi from "@pulumi/pulumi";
import * as netns from "pulumi-netns";

interface Entry {
  key: string;
  kind: keyof typeof netns;
  inputs: Record<string, unknown>;
  deps: string[];
  /** input path → [resource key, output name] */
  flows: Record<string, [string, string]>;
}

const cfg = new pulumi.Config();
const connection: netns.ConnectionArgs = {
  host: cfg.require("host"),
  privateKey: cfg.requireSecret("sshKey"),
  hostKey: cfg.require("hostKey"),
};

const made: Record<string, pulumi.CustomResource> = {};
for (const entry of cfg.requireObject<Entry[]>("program")) {
  const inputs: Record<string, any> = structuredClone(entry.inputs);
  for (const [path, [source, output]] of Object.entries(entry.flows)) {
    const keys = path.split(".");
    const parent = keys.slice(0, -1).reduce((cursor, key) => cursor[key], inputs);
    parent[keys[keys.length - 1]] = (made[source] as any)[output];
  }
  const Resource = netns[entry.kind] as unknown as new (
    name: string,
    args: unknown,
    opts: pulumi.CustomResourceOptions,
  ) => pulumi.CustomResource;
  made[entry.key] = new Resource(entry.key, { ...inputs, connection }, { dependsOn: entry.deps.map((key) => made[key]) });
}
