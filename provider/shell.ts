/**
 * The one place where values become remote shell text. Every command is built as an argv array
 * of validated values and turned into a line here; nothing else concatenates shell strings.
 */
const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

export function shellQuote(arg: string): string {
  if (arg === "") return "''";
  if (SAFE.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function shellLine(argv: readonly string[]): string {
  if (argv.length === 0) throw new Error("empty command");
  return argv.map(shellQuote).join(" ");
}
