/** A stack of a project copied into a Pulumi workdir, with its config set, for end-to-end tests. */
import { ConfigMap, LocalWorkspace, Stack } from "@pulumi/pulumi/automation";
import type { PulumiWorkdir } from "../../scripts/pulumiWorkdir";

export async function projectStack(work: PulumiWorkdir, project: string, config: ConfigMap, source?: string) {
  const dir = work.copyProject(project, source);
  const stack = await LocalWorkspace.createStack({ stackName: "e2e", workDir: dir }, { envVars: work.env });
  await stack.setAllConfig(config);
  return { stack, dir } as { stack: Stack; dir: string };
}

/** The operations of a summary other than "same", e.g. { create: 3 }. */
export const changes = (summary: Record<string, number> | undefined) =>
  Object.fromEntries(Object.entries(summary ?? {}).filter(([op, n]) => op !== "same" && n > 0));
