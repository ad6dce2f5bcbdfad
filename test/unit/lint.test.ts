/** The code passes ESLint (eslint.config.mjs) and is laid out as Prettier lays it out (.prettierrc.json). */
import { spawnSync } from "node:child_process";
import { join } from "node:path";

const root = join(__dirname, "..", "..");
const run = (bin: string, args: string[]) => spawnSync(join(root, "node_modules", ".bin", bin), args, { cwd: root, encoding: "utf8" });

test("ESLint finds nothing", () => {
  const result = run("eslint", ["--max-warnings", "0", "."]);
  expect(result.stdout + result.stderr).toBe("");
  expect(result.status).toBe(0);
}, 120_000);

test("Prettier would change no file", () => {
  const result = run("prettier", ["--list-different", "."]);
  expect(result.stdout.trim().split("\n").filter(Boolean)).toEqual([]);
  expect(result.status).toBe(0);
}, 120_000);
