/**
 * A scratch area for running the examples with the real Pulumi CLI: a local file backend, a private
 * PULUMI_HOME, copies of example projects, and `node_modules/pulumi-netns` pointing at this checkout
 * (so programs and the dynamic provider load the code under test, with the checkout's @pulumi/pulumi).
 * It lives under the repository's .work/ so module resolution reaches the checkout's node_modules.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { dirname, join } from "node:path";

/** This checkout's root, whether running from test/harness/ (tests) or dist/test/harness/ (compiled). */
export const REPO_ROOT = (() => {
  for (let dir = __dirname; dir !== dirname(dir); dir = dirname(dir)) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, "utf8")).name === "pulumi-netns") return dir;
  }
  throw new Error(`no pulumi-netns checkout above ${__dirname}`);
})();
/** What a project's copy leaves out: its stacks' config, and what installing made (node_modules, a Python venv). */
const NOT_COPIED = /(^|\/)(Pulumi\.[^/]+\.yaml|node_modules|venv|__pycache__)$/;

/** Fails with one clear sentence when the CLI is missing. */
export function requirePulumiCli(): void {
  try {
    execFileSync("pulumi", ["version"], { stdio: "ignore" });
  } catch {
    throw new Error('the Pulumi CLI is not on PATH: run  export PATH="$(bash scripts/setup-pulumi.sh):$PATH"');
  }
}

/**
 * Puts the Pulumi CLI first on PATH and returns its directory: the one on PATH, else the one that
 * scripts/setup-pulumi.sh builds once into ~/.cache/pulumi-netns (it shows its progress and estimate).
 */
export function ensurePulumiCli(): string {
  const setup = spawnSync("bash", [join(REPO_ROOT, "scripts", "setup-pulumi.sh")], {
    stdio: ["ignore", "pipe", "inherit"],
    encoding: "utf8",
  });
  const bin = setup.stdout.trim().split("\n").pop();
  if (setup.status !== 0 || !bin) throw new Error("the Pulumi CLI is missing and scripts/setup-pulumi.sh could not provide it (see above)");
  process.env.PATH = `${bin}:${process.env.PATH}`;
  return bin;
}

export class PulumiWorkdir {
  readonly env: Record<string, string>;

  private constructor(readonly dir: string) {
    this.env = {
      PULUMI_BACKEND_URL: `file://${join(dir, "state")}`,
      PULUMI_CONFIG_PASSPHRASE: "pulumi-netns-lab",
      PULUMI_HOME: join(dir, "home"),
      PULUMI_SKIP_UPDATE_CHECK: "true",
    };
  }

  static create(label: string): PulumiWorkdir {
    const dir = join(REPO_ROOT, ".work", `${label}-${randomBytes(3).toString("hex")}`);
    for (const sub of ["state", "home", "node_modules"]) mkdirSync(join(dir, sub), { recursive: true });
    symlinkSync(REPO_ROOT, join(dir, "node_modules", "pulumi-netns"));
    return new PulumiWorkdir(dir);
  }

  /** One made earlier by `create` (a kept demo's). */
  static open(dir: string): PulumiWorkdir {
    return new PulumiWorkdir(dir);
  }

  /** A fresh copy of a project (examples/NAME by default); its stack files stay out of the repository. */
  copyProject(name: string, source = join(REPO_ROOT, "examples", name)): string {
    const target = join(this.dir, name);
    mkdirSync(target, { recursive: true });
    cpSync(source, target, { recursive: true, filter: (path) => !NOT_COPIED.test(path) });
    return target;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
