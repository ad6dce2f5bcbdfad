/**
 * Every external command the project runs, found in its source where the code says it runs one:
 * - in TypeScript, the first word of an `Argv` (the type every command of the provider, the harness
 *   and the tests is built as), the command of a `node:child_process` call, and the commands of a
 *   shell script given to `sh -c` or `bash -c` in either;
 * - in shell scripts, each word in command position (after `;`, `&&`, `|`, a newline, `$(`, `then`…),
 *   also inside `sh -c '…'` and here-documents.
 * A word that is a variable (`"$program"`), a function of the script, a builtin or a project file is no
 * external command. The prerequisites guard (test/unit/prerequisitesCover.test.ts) checks the result.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import * as ts from "typescript";

export interface CommandUse {
  command: string;
  file: string;
}

/** Shell builtins and keywords (bash and dash): never looked up on PATH. */
const BUILTINS = new Set(
  (
    "cd export set shift source . exit return local read trap wait eval printf echo test [ [[ ]] true false kill command " +
    "type unset break continue umask exec getopts hash alias declare readonly let : mapfile pushd popd shopt " +
    "if then else elif fi do done while until for case esac in { } ! function time select"
  ).split(" "),
);

/** Words that run the word after them (their options aside). */
const PREFIXES = new Set(["exec", "command", "nohup", "time", "setsid", "xargs"]);

const COMMAND_WORD = /^(\/[\w./+-]+|[A-Za-z0-9_][\w.+-]*)$/;
const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;

type Token = { word: string } | { op: string };

/**
 * Splits shell text into words and operators. Quoted text stays in its word (quotes removed); `$(…)` and
 * backquotes are parsed on their own (`nested`); here-document bodies too. `${…}` and `$x` stay words.
 */
function tokenize(text: string, nested: string[]): Token[] {
  const tokens: Token[] = [];
  const heredocs: string[] = [];
  let word: string | undefined;
  const end = () => {
    if (word !== undefined) tokens.push({ word });
    word = undefined;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "'") {
      const close = text.indexOf("'", i + 1);
      word = (word ?? "") + text.slice(i + 1, close < 0 ? text.length : close);
      i = close < 0 ? text.length : close;
    } else if (c === '"') {
      let j = i + 1;
      let inner = "";
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === "\\") inner += text[++j];
        else if (text[j] === "$" && text[j + 1] === "(") {
          const close = matching(text, j + 1);
          if (text[j + 2] !== "(") nested.push(text.slice(j + 2, close));
          inner += "$(…)";
          j = close;
        } else inner += text[j];
      }
      word = (word ?? "") + inner;
      i = j;
    } else if (c === "\\") {
      word = (word ?? "") + (text[i + 1] ?? "");
      i++;
    } else if (c === "$" && text[i + 1] === "(") {
      const close = matching(text, i + 1);
      if (text[i + 2] !== "(") nested.push(text.slice(i + 2, close));
      word = (word ?? "") + "$(…)";
      i = close;
    } else if (c === "$" && text[i + 1] === "{") {
      const close = text.indexOf("}", i);
      word = (word ?? "") + text.slice(i, close + 1);
      i = close;
    } else if (c === "`") {
      const close = text.indexOf("`", i + 1);
      nested.push(text.slice(i + 1, close));
      word = (word ?? "") + "`…`";
      i = close;
    } else if (c === "#" && word === undefined) {
      while (i + 1 < text.length && text[i + 1] !== "\n") i++;
    } else if (c === "\n") {
      end();
      tokens.push({ op: "\n" });
      for (const delimiter of heredocs.splice(0)) {
        const bodyEnd = text.slice(i + 1).search(new RegExp(`^\\t*${delimiter}$`, "m"));
        const body = bodyEnd < 0 ? text.slice(i + 1) : text.slice(i + 1, i + 1 + bodyEnd);
        nested.push(body);
        i += body.length + delimiter.length;
      }
    } else if (c === " " || c === "\t") {
      end();
    } else if (c === "&" && /[<>]$/.test(word ?? "")) {
      word += c;
    } else if (";&|()".includes(c)) {
      end();
      const pair = text.slice(i, i + 2);
      const op = [";;", "&&", "||"].includes(pair) ? pair : c;
      if (op.length === 2) i++;
      tokens.push({ op });
    } else if (c === "<" && text[i + 1] === "<" && word === undefined) {
      const match = /^<<-?\s*['"]?(\w+)['"]?/.exec(text.slice(i));
      if (match) {
        heredocs.push(match[1]);
        i += match[0].length - 1;
      } else word = "<";
    } else {
      word = (word ?? "") + c;
    }
  }
  end();
  return tokens;
}

/** The index of the `)` closing the `(` at `open`. */
function matching(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === "(") depth++;
    else if (text[i] === ")" && --depth === 0) return i;
    else if (text[i] === "'") i = text.indexOf("'", i + 1);
  }
  return text.length;
}

/** The external commands of a shell script, in order of appearance. */
export function shellCommands(text: string): string[] {
  const nested: string[] = [];
  const tokens = tokenize(text, nested);
  const functions = new Set<string>();
  const found: string[] = [];
  let atCommand = true;
  let skipToDo = false;
  let casePatterns = false;
  let afterCase = false;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    if ("op" in token) {
      if (token.op === ")" && casePatterns) casePatterns = false;
      if (token.op === ";;") casePatterns = true;
      if (token.op === "\n" || token.op === ";") skipToDo = false;
      atCommand = true;
      continue;
    }
    const { word } = token;
    if (afterCase) {
      if (word === "in") {
        afterCase = false;
        casePatterns = true;
      }
      continue;
    }
    if (casePatterns) {
      if (word === "esac") casePatterns = false;
      continue;
    }
    if (skipToDo) {
      if (word === "do") {
        skipToDo = false;
        atCommand = true;
      }
      continue;
    }
    if (!atCommand) continue;
    if (word === "case") {
      afterCase = true;
      continue;
    }
    if (word === "for" || word === "select") {
      skipToDo = true;
      continue;
    }
    if (ASSIGNMENT.test(word) || /^\d*[<>]/.test(word)) continue;
    const next = tokens[i + 1];
    if (next && "op" in next && next.op === "(" && tokens[i + 2] && "op" in tokens[i + 2] && (tokens[i + 2] as { op: string }).op === ")") {
      functions.add(word);
      continue;
    }
    if (BUILTINS.has(word) && !PREFIXES.has(word)) {
      // Keywords open a new command; other builtins take arguments.
      atCommand = ["if", "then", "else", "elif", "do", "while", "until", "!", "{", "time"].includes(word);
      continue;
    }
    if (PREFIXES.has(word)) continue;
    atCommand = false;
    if (!COMMAND_WORD.test(word)) continue;
    found.push(word);
    // `sh -c SCRIPT`: the script's commands are run too.
    const script = scriptArgument(tokens, i);
    if (script !== undefined) nested.push(script);
  }
  for (const text of nested) found.push(...shellCommands(text));
  return found.filter((command) => !functions.has(command));
}

function scriptArgument(tokens: Token[], at: number): string | undefined {
  const word = (k: number) => {
    const token = tokens[k];
    return token && "word" in token ? token.word : undefined;
  };
  if (!["sh", "bash", "/bin/sh", "/bin/bash"].includes(word(at)!) || word(at + 1) !== "-c") return undefined;
  return word(at + 2);
}

/** Source files of the kinds given, under `root`, outside node_modules, dist and .work. */
function filesUnder(root: string, dir: string, accept: (name: string) => boolean): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (["node_modules", "dist", ".work", ".git"].includes(name)) return [];
    if (statSync(join(root, path)).isDirectory()) return filesUnder(root, path, accept);
    return accept(name) ? [path] : [];
  });
}

/**
 * The shell text an expression may give: its literals, the constants it names and the bodies of the
 * functions it calls. Values put into the text (template substitutions, arguments that are not literals)
 * are words of the script, not script: `$__x__` stands for them; a named constant put in at a line's start is followed too.
 */
function reachableTexts(checker: ts.TypeChecker, node: ts.Node, depth = 0, seen = new Set<ts.Node>()): string[] {
  if (depth > 4 || seen.has(node)) return [];
  seen.add(node);
  const texts: string[] = [];
  const followed = (n: ts.Node): string[] =>
    (checker.getSymbolAtLocation(n)?.declarations ?? []).flatMap((declaration) => {
      const body =
        ts.isVariableDeclaration(declaration) || ts.isPropertyAssignment(declaration)
          ? declaration.initializer
          : ts.isFunctionDeclaration(declaration)
            ? declaration.body
            : undefined;
      return body && !declaration.getSourceFile().isDeclarationFile ? reachableTexts(checker, body, depth + 1, seen) : [];
    });
  const follow = (n: ts.Node) => texts.push(...followed(n));
  const visit = (n: ts.Node): void => {
    if (ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n)) texts.push(n.text);
    else if (ts.isTemplateExpression(n)) {
      // A constant put in at the start of a line is script too, in its place (lines shared by several
      // scripts: the functions it defines are the script's).
      let text = n.head.text;
      n.templateSpans.forEach((span, i) => {
        const before = i === 0 ? n.head.text : n.templateSpans[i - 1].literal.text;
        const lines = ts.isIdentifier(span.expression) && (before === "" || before.endsWith("\n")) ? followed(span.expression) : [];
        text += (lines.length > 0 ? lines.join("\n") : "$__x__") + span.literal.text;
      });
      texts.push(text);
    } else if (ts.isIdentifier(n)) follow(n);
    else if (ts.isPropertyAccessExpression(n)) {
      follow(n.name);
      visit(n.expression);
    } else if (ts.isCallExpression(n)) {
      visit(n.expression);
      n.arguments.filter((arg) => ts.isStringLiteralLike(arg) || ts.isTemplateExpression(arg)).forEach(visit);
    } else ts.forEachChild(n, visit);
  };
  visit(node);
  return texts;
}

/** The string values an expression may have, when its type says (a literal, or a union of literals). */
function literalValues(checker: ts.TypeChecker, node: ts.Expression): string[] {
  const type = checker.getTypeAtLocation(node);
  const parts = type.isUnion() ? type.types : [type];
  return parts.every((t) => t.isStringLiteral()) ? parts.map((t) => (t as ts.StringLiteralType).value) : [];
}

const CHILD_PROCESS = new Set(["execFileSync", "execFile", "spawn", "spawnSync", "exec", "execSync"]);

function fromChildProcessModule(checker: ts.TypeChecker, callee: ts.Expression): string | undefined {
  let symbol = checker.getSymbolAtLocation(ts.isPropertyAccessExpression(callee) ? callee.name : callee);
  if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
  const declaration = symbol?.declarations?.[0];
  if (!symbol || !declaration || !CHILD_PROCESS.has(symbol.name)) return undefined;
  return /child_process/.test(declaration.getSourceFile().fileName) ? symbol.name : undefined;
}

const isArgvType = (type: ts.Type | undefined) => type?.aliasSymbol?.name === "Argv";

function typescriptCommands(root: string, files: string[]): CommandUse[] {
  const program = ts.createProgram(
    files.map((file) => join(root, file)),
    {
      strict: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.CommonJS,
      esModuleInterop: true,
      skipLibCheck: true,
      noEmit: true,
      types: ["node", "jest"],
    },
  );
  const checker = program.getTypeChecker();
  const uses: CommandUse[] = [];
  for (const file of files) {
    const source = program.getSourceFile(join(root, file))!;
    const add = (commands: string[]) => uses.push(...commands.map((command) => ({ command, file })));
    /**
     * argv's words: the command; the command that `ip netns exec NS` or `nsenter … --` runs; and the commands
     * of a script given as `sh -c SCRIPT` or `bash -c SCRIPT` anywhere in it (after such wrappers).
     */
    const fromArgv = (words: readonly ts.Expression[]) => {
      const values = words.map((word) => (ts.isSpreadElement(word) ? [] : literalValues(checker, word)));
      const is = (k: number, value: string) => values[k]?.length === 1 && values[k][0] === value;
      add(values[0] ?? []);
      if (is(0, "ip") && is(1, "netns") && is(2, "exec")) add(values[4] ?? []);
      if (is(0, "nsenter")) add(values[values.findIndex((_, k) => is(k, "--")) + 1] ?? []);
      values.forEach((_, k) => {
        if ((is(k, "sh") || is(k, "bash")) && is(k + 1, "-c") && words[k + 2])
          add(reachableTexts(checker, words[k + 2]).flatMap(shellCommands));
      });
    };
    const visit = (node: ts.Node) => {
      if (ts.isArrayLiteralExpression(node) && isArgvType(checker.getContextualType(node))) fromArgv(node.elements);
      if (ts.isCallExpression(node)) {
        const call = fromChildProcessModule(checker, node.expression);
        const [command, args] = node.arguments;
        if (call === "exec" || call === "execSync") add(reachableTexts(checker, command).flatMap(shellCommands));
        else if (call && command) fromArgv([command, ...(args && ts.isArrayLiteralExpression(args) ? args.elements : [])]);
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return uses;
}

/** Every command of the repository at `root`: its TypeScript, its shell scripts, and .ci/run. */
export function commandsUsed(root: string): CommandUse[] {
  const tsFiles = ["provider", "sdk", "cli", "tools", "test", "examples"].flatMap((dir) =>
    filesUnder(root, dir, (name) => name.endsWith(".ts") && !name.endsWith(".d.ts")),
  );
  const shellFiles = [...["scripts", "test"].flatMap((dir) => filesUnder(root, dir, (name) => name.endsWith(".sh"))), ".ci/run"];
  const shellUses = shellFiles.flatMap((file) =>
    shellCommands(readFileSync(join(root, file), "utf8")).map((command) => ({ command, file })),
  );
  return [...typescriptCommands(root, tsFiles), ...shellUses].map((use) => ({ ...use, file: relative(root, join(root, use.file)) }));
}
