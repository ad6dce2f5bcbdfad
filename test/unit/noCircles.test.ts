/**
 * No import circles among the package's sources and tools, as madge finds them (type-only imports count:
 * a circle of types is a circle of design). A circle works only while its exports are read lazily, and
 * one module of it cannot be understood, tested or loaded without the others.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";

interface DependencyGraph {
  circular(): string[][];
  /** File → the files it imports, relative to baseDir. */
  obj(): Record<string, string[]>;
  warnings(): { skipped: string[] };
}
// madge ships no types.
const madge: (paths: string[], config: Record<string, unknown>) => Promise<DependencyGraph> = require("madge");

const root = join(__dirname, "..", "..");
const DIRECTORIES = ["provider", "sdk", "cli", "tools"];

const tsFiles = (dir: string): string[] =>
  readdirSync(join(root, dir), { recursive: true, encoding: "utf8" })
    .filter((path) => path.endsWith(".ts") && !path.endsWith(".d.ts"))
    .map((path) => join(dir, path));

test("provider/, sdk/, cli/ and tools/ import one another without a circle", async () => {
  const graph = await madge(
    DIRECTORIES.map((dir) => join(root, dir)),
    { baseDir: root, fileExtensions: ["ts"], tsConfig: join(root, "tsconfig.json") },
  );
  expect(graph.circular()).toEqual([]);
  // It saw every file (and what they import beyond, the test harness tools use) and resolved every
  // relative import: an unresolved one would hide a circle.
  expect(Object.keys(graph.obj())).toEqual(expect.arrayContaining(DIRECTORIES.flatMap(tsFiles)));
  expect(graph.warnings().skipped).toEqual([]);
  expect(graph.obj()["sdk/index.ts"]).toContain("sdk/doors/dynamic.ts");
});
