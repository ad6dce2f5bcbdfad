/** sdk/python is generated from schema.json (`npm run sdk`); this fails when it is stale. Needs the CLI's tools on PATH. */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { REPO_ROOT, requirePulumiCli } from "../harness/pulumiWorkdir";

const files = (dir: string): Record<string, string> =>
  Object.fromEntries(
    readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile() && !/__pycache__|\.egg-info|\/build\//.test(`${entry.parentPath}/`))
      .map((entry) => [relative(dir, join(entry.parentPath, entry.name)), readFileSync(join(entry.parentPath, entry.name), "utf8")]),
  );

test("the committed Python SDK is what schema.json generates (regenerate: npm run sdk)", () => {
  requirePulumiCli();
  const out = mkdtempSync(join(tmpdir(), "pnt-sdk-"));
  try {
    execFileSync("pulumi-netns-gen-sdk", ["--language", "python", "--out", out, join(REPO_ROOT, "schema.json")], { stdio: "pipe" });
    const generated = files(join(out, "python"));
    expect(Object.keys(generated)).toContain("pulumi_netns/lab.py");
    expect(files(join(REPO_ROOT, "sdk", "python"))).toEqual(generated);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
