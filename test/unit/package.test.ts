/**
 * What npm ships: the provider, the SDK and the command line (tsconfig.build.json), never the test harness
 * or the developer tools, and nothing shipped imports them.
 */
import { execFileSync } from "node:child_process";
import { join, relative } from "node:path";

const root = join(__dirname, "..", "..");
const SHIPPED_SOURCES = /^(provider|sdk|cli)\//;

test("the publishing build compiles only provider/, sdk/ and cli/ (no import reaches the harness or tools)", () => {
  const listed = execFileSync("npx", ["tsc", "-p", "tsconfig.build.json", "--listFilesOnly"], { cwd: root, encoding: "utf8" });
  const ours = listed
    .split("\n")
    .filter((path) => path && !path.includes("/node_modules/"))
    .map((path) => relative(root, path));
  expect(ours.length).toBeGreaterThan(40);
  expect(ours.filter((path) => !SHIPPED_SOURCES.test(path))).toEqual([]);
  expect(ours).toContain("cli/main.ts");
});

test("npm pack holds the built provider, SDK and command line, the plugin launcher and the schema, and no harness", () => {
  const [pack] = JSON.parse(execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: root, encoding: "utf8" })) as [
    { files: { path: string }[] },
  ];
  const paths = pack.files.map((file) => file.path);
  expect(paths).toEqual(
    expect.arrayContaining([
      "bin/pulumi-resource-netns",
      "schema.json",
      "dist/cli/main.js",
      "dist/sdk/index.js",
      "dist/provider/native/main.js",
    ]),
  );
  expect(
    paths.filter((path) => !/^(dist\/(provider|sdk|cli)\/|sdk\/python\/|bin\/|docs\/|schema\.json$|package\.json$|README\.md$)/.test(path)),
  ).toEqual([]);
});
