// What every `ferry <command>` is: its usage, the flags it takes (and no
// others: an unknown one is a usage error), and what it does.
import { parseArgs, type ParseArgsConfig } from 'node:util'

export type Options = NonNullable<ParseArgsConfig['options']>

export interface Command<O extends Options = Options> {
  readonly name: string
  /** One line for `ferry --help`. */
  readonly summary: string
  /** `ferry <name> --help`: the synopsis and each flag. */
  readonly usage: string
  readonly options: O
  /** Resolves with the exit code. */
  run (values: ParsedValues<O>, positionals: string[]): Promise<number>
}

export type ParsedValues<O extends Options> = ReturnType<typeof parseArgs<{ options: O, allowPositionals: true, strict: true }>>['values']

/** A usage error: the message, then the command's usage; exit 2. */
export class UsageError extends Error {
  readonly usage: string
  constructor (message: string, usage: string) {
    super(message)
    this.usage = usage
  }
}

/** A command as the entry point runs it: its own flags parsed, --help answered. */
export interface CliCommand {
  readonly name: string
  readonly summary: string
  readonly usage: string
  main (argv: string[]): Promise<number>
}

export function defineCommand<O extends Options> (c: Command<O>): CliCommand {
  return {
    name: c.name,
    summary: c.summary,
    usage: c.usage,
    async main (argv) {
      const { values, positionals } = parseFor(c, argv)
      if (values.help === true) { console.log(c.usage); return 0 }
      return await c.run(values, positionals)
    },
  }
}

/** Parse `argv` for `command`: its own flags only, plus --help. */
export function parseFor<O extends Options> (command: Command<O>, argv: string[]): { values: ParsedValues<O> & { help?: boolean }, positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { ...command.options, help: { type: 'boolean', short: 'h' } } })
    return { values: values as ParsedValues<O> & { help?: boolean }, positionals }
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' || code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      throw new UsageError(`ferry ${command.name}: ${(err as Error).message.split('. ')[0]}`, command.usage)
    }
    throw err
  }
}

/** The flags that reshape a region file, which serve and check both take. */
export const REGION_FLAGS = {
  config: { type: 'string', short: 'c' },
  listen: { type: 'string' },
  data: { type: 'string' },
  upstream: { type: 'string' },
  workers: { type: 'string' },
} as const satisfies Options

export const REGION_FLAGS_USAGE = `  --config FILE       region file (default: the embedded regions/local.yaml)
  --listen HOST:PORT  address to serve on (overrides "listen")
  --data DIR          data folder: blob cache and state (overrides "data")
  --upstream URL      this registry becomes the only default upstream: names without a
                      known prefix go there (the file's default upstream stops being one)
  --workers N         worker processes sharing the port (overrides "workers")`

export function overridesOf (values: { listen?: string | undefined, data?: string | undefined, upstream?: string | undefined, workers?: string | undefined }, usage: string, name: string): { listen?: string, data?: string, upstream?: string, workers?: number } {
  const workers = values.workers === undefined ? undefined : Number(values.workers)
  if (workers !== undefined && !Number.isInteger(workers)) throw new UsageError(`ferry ${name}: --workers takes a whole number`, usage)
  return {
    ...(values.listen !== undefined ? { listen: values.listen } : {}),
    ...(values.data !== undefined ? { data: values.data } : {}),
    ...(values.upstream !== undefined ? { upstream: values.upstream } : {}),
    ...(workers !== undefined ? { workers } : {}),
  }
}

export function requireConfig (config: string | undefined, name: string, usage: string): string {
  if (config === undefined) throw new UsageError(`ferry ${name}: --config FILE is required`, usage)
  return config
}
