#!/usr/bin/env -S node --max-semi-space-size=16
// ferry <command>: the operator's entry point. Each command takes its own
// flags and no others (src/cli/*.ts); `ferry <command> --help` shows them.
import { auditCommand } from './cli/audit.ts'
import { checkCommand } from './cli/check.ts'
import { gcCommand } from './cli/gc.ts'
import { hostsCommand } from './cli/hosts.ts'
import { exportCommand } from './cli/export.ts'
import { importCommand } from './cli/import.ts'
import { inventoryCommand } from './cli/inventory.ts'
import { mirrorCommand } from './cli/mirror.ts'
import { UsageError, type CliCommand } from './cli/command.ts'
import { passwdCommand } from './cli/passwd.ts'
import { replicateCommand } from './cli/replicate.ts'
import { robotCommand } from './cli/robot.ts'
import { schemaCommand } from './cli/schema.ts'
import { serveCommand } from './cli/serve.ts'
import { webhooksCommand } from './cli/webhooks.ts'
import { ConfigError } from './config/parse.ts'

// fsync of committed blobs holds a threadpool thread for milliseconds; with
// libuv's default 4 threads, every other file operation queued behind them.
// Read at the pool's first use, which is after this line.
process.env.UV_THREADPOOL_SIZE ??= '16'

const VERSION = '0.1.0'
const COMMANDS: readonly CliCommand[] = [serveCommand, checkCommand, replicateCommand, mirrorCommand, inventoryCommand, exportCommand, importCommand, gcCommand, auditCommand, robotCommand, passwdCommand, webhooksCommand, hostsCommand, schemaCommand]

const USAGE = `ferry: pull-through cache and replicator for OCI registries

usage: ferry <command> [flags]    (ferry <command> --help for its flags)

commands:
${COMMANDS.map(c => `  ${c.name.padEnd(10)} ${c.summary}`).join('\n')}

  ferry --help | --version`

async function main (argv: string[]): Promise<number> {
  const [first, ...rest] = argv
  if (first === '--version') { console.log(`ferry ${VERSION}`); return 0 }
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    console[first === undefined ? 'error' : 'log'](USAGE)
    return first === undefined ? 2 : 0
  }
  const command = COMMANDS.find(c => c.name === first)
  if (command === undefined) throw new UsageError(`ferry: unknown command "${first}"`, USAGE)
  return await command.main(rest)
}

main(process.argv.slice(2)).then(code => { process.exitCode = code }, (err: unknown) => {
  if (err instanceof ConfigError) {
    console.error(err.message)
    process.exitCode = 1
  } else if (err instanceof UsageError) {
    console.error(`${err.message}\n\n${err.usage}`)
    process.exitCode = 2
  } else {
    console.error(err)
    process.exitCode = 1
  }
})
