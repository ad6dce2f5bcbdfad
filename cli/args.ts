/** The words of a command line: options by one table per command, operands, and what follows `--`. */
import { UsageError } from "./usage";

export interface OptionTable {
  /** Spelling → name, for the options that take the next word as their value. */
  values?: Record<string, string>;
  /** Spelling → name, for the options that stand alone. */
  switches?: Record<string, string>;
}

export interface ParsedArgs {
  /** Name → each value given, in order. */
  values: Map<string, string[]>;
  switches: Set<string>;
  operands: string[];
  /** The words after `--`; undefined when there is no `--`. */
  rest?: string[];
}

export function parseArgs(args: readonly string[], table: OptionTable): ParsedArgs {
  const parsed: ParsedArgs = { values: new Map(), switches: new Set(), operands: [] };
  for (let i = 0; i < args.length; i++) {
    const word = args[i];
    const valueName = table.values?.[word];
    const switchName = table.switches?.[word];
    if (word === "--") {
      parsed.rest = args.slice(i + 1);
      break;
    } else if (valueName !== undefined) {
      const value = args[++i];
      if (value === undefined || value.startsWith("--")) throw new UsageError(`${word} needs a value`);
      parsed.values.set(valueName, [...(parsed.values.get(valueName) ?? []), value]);
    } else if (switchName !== undefined) {
      parsed.switches.add(switchName);
    } else if (word.startsWith("-") && word !== "-") {
      throw new UsageError(`unknown option ${word}`);
    } else {
      parsed.operands.push(word);
    }
  }
  return parsed;
}

/** The value of an option that may be given once; `spelling` names it in the error. */
export function onlyValue(parsed: ParsedArgs, name: string, spelling: string): string | undefined {
  const given = parsed.values.get(name) ?? [];
  if (given.length > 1) throw new UsageError(`${spelling} is given ${given.length} times; give it once`);
  return given[0];
}

/** One of `choices`, or the default when the option is not given. */
export function choice<T extends string>(parsed: ParsedArgs, name: string, spelling: string, choices: readonly T[], fallback: T): T {
  const value = onlyValue(parsed, name, spelling) ?? fallback;
  if (!choices.includes(value as T)) throw new UsageError(`${spelling} ${value}: expected one of ${choices.join(", ")}`);
  return value as T;
}

/** Refuses operands beyond those a command takes. */
export function noMoreOperands(parsed: ParsedArgs, taken: number): void {
  const extra = parsed.operands.slice(taken);
  if (extra.length > 0) throw new UsageError(`unexpected argument${extra.length > 1 ? "s" : ""} ${extra.join(" ")}`);
}
