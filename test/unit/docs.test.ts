/**
 * The README stays short, and what the documents point at exists: every relative link and anchor in
 * README.md, docs/*.md and the examples' READMEs, every `npm run` script they name, every repository path
 * they mention, and every section in a document's table of contents.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const root = join(__dirname, "..", "..");
const read = (path: string) => readFileSync(join(root, path), "utf8");

const DOCUMENTS = [
  "README.md",
  ...readdirSync(join(root, "docs"))
    .filter((name) => name.endsWith(".md"))
    .map((name) => `docs/${name}`),
  ...readdirSync(join(root, "examples"))
    .map((name) => `examples/${name}/README.md`)
    .filter((path) => existsSync(join(root, path))),
];

/** The text outside fenced code blocks, line by line (code lines become empty, so line numbers stay). */
function prose(text: string): string[] {
  let fenced = false;
  return text.split("\n").map((line) => {
    if (/^\s*```/.test(line)) {
      fenced = !fenced;
      return "";
    }
    return fenced ? "" : line;
  });
}

/** GitHub's anchor for a heading: lower case, punctuation dropped (but - and _), each space a hyphen. */
export function slug(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\p{M}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

/** The anchors of a Markdown file's headings, numbered as GitHub numbers repeated ones (-1, -2, …). */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const line of prose(text)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const base = slug(heading[1]);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    out.add(count ? `${base}-${count}` : base);
  }
  return out;
}

/** Links and images, outside code blocks: [text](target) and ![alt](target "title"). */
function links(text: string): string[] {
  return (
    prose(text)
      .join("\n")
      .replace(/`[^`\n]*`/g, "code")
      .match(/\]\([^)\s]+(?:\s+"[^"]*")?\)/g)
      ?.map((link) => link.slice(2, -1).split(/\s/)[0]) ?? []
  );
}

test("the README is under 300 lines", () => {
  expect(read("README.md").split("\n").length).toBeLessThan(300);
});

test("the slug of a heading is GitHub's", () => {
  expect(slug("When an `up` is interrupted")).toBe("when-an-up-is-interrupted");
  expect(slug("Two doors: the dynamic provider and the native one")).toBe("two-doors-the-dynamic-provider-and-the-native-one");
  expect(slug("What state forgot: `pulumi-netns sweep`")).toBe("what-state-forgot-pulumi-netns-sweep");
  expect(slug("Services, expectations and pulled cables")).toBe("services-expectations-and-pulled-cables");
});

test.each(DOCUMENTS)("every relative link in %s points to a file or directory that exists, and to a heading it has", (document) => {
  const broken: string[] = [];
  for (const target of links(read(document))) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
    const [path, anchor] = target.split("#", 2);
    const file = path ? resolve(root, dirname(document), decodeURI(path)) : join(root, document);
    if (!existsSync(file)) {
      broken.push(`${target}: no ${relative(root, file)}`);
      continue;
    }
    if (anchor === undefined) continue;
    if (statSync(file).isDirectory() || !file.endsWith(".md")) broken.push(`${target}: an anchor into a file that is not Markdown`);
    else if (!anchors(readFileSync(file, "utf8")).has(anchor)) broken.push(`${target}: no heading #${anchor} in ${relative(root, file)}`);
  }
  expect(broken).toEqual([]);
});

test.each(DOCUMENTS)("every `npm run` script and repository path that %s names exists", (document) => {
  const text = read(document);
  const { scripts } = JSON.parse(read("package.json")) as { scripts: Record<string, string> };
  const missingScripts = [...text.matchAll(/npm run ([\w:-]+)/g)].map((m) => m[1]).filter((name) => !(name in scripts));
  expect(missingScripts).toEqual([]);
  const paths = [...text.matchAll(/(?<=^|[\s`("'[])((?:test|tools|scripts|examples|provider|sdk|cli|bin|docs|\.ci)\/[\w./-]*)/gm)].map(
    (m) => m[1].replace(/\.+$/, ""),
  );
  expect(paths.filter((path) => !existsSync(join(root, path)))).toEqual([]);
});

test.each(DOCUMENTS.filter((document) => /^## Contents$/m.test(read(document))))(
  "the table of contents of %s lists every section",
  (document) => {
    const lines = prose(read(document));
    const start = lines.indexOf("## Contents");
    const sections = lines
      .slice(start + 1)
      .filter((line) => line.startsWith("## "))
      .map((line) => slug(line.slice(3)));
    const contents = lines.slice(
      start + 1,
      lines.findIndex((line, i) => i > start && line.startsWith("## ")),
    );
    const listed = new Set(contents.flatMap((line) => [...line.matchAll(/\]\(#([^)]+)\)/g)].map((m) => m[1])));
    expect(sections.filter((section) => !listed.has(section))).toEqual([]);
  },
);
