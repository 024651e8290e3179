// ferry itself, as a user runs it: the built CLI in a child process.
import { writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { stringify } from 'yaml'
import { scratchDir, startProc, type Proc } from './procs.ts'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const CLI = join(ROOT, 'dist', 'cli.js')
/** The V8 flags ferry's launchers use (the CLI's shebang, npm start, the deploy image). */
export const NODE_FLAGS = ['--max-semi-space-size=16']

export interface Ferry {
  readonly url: string
  readonly host: string
  readonly port: number
  readonly data: string
  readonly proc: Proc
  readonly configPath: string
  /** Every JSON log line ferry wrote. */
  logs (): Record<string, unknown>[]
  /** Log lines are written asynchronously: wait until `count` of them match. */
  waitForLogs (match: (l: Record<string, unknown>) => boolean, count: number, timeoutMs?: number): Promise<Record<string, unknown>[]>
  stop (): Promise<void>
  kill (): Promise<void>
}

export interface FerryOptions {
  /** A region document; `data` and `listen` are filled in when absent. */
  config?: Record<string, unknown>
  /** Extra CLI arguments instead of / besides a config. */
  args?: string[]
  env?: Record<string, string>
  data?: string
}

export async function startFerry (opts: FerryOptions = {}): Promise<Ferry> {
  const data = opts.data ?? scratchDir('ferry-data-')
  const args = ['serve']
  let configPath = ''
  if (opts.config !== undefined) {
    const doc = { listen: '127.0.0.1:0', data, log: { level: 'debug' }, ...opts.config }
    configPath = join(scratchDir('ferry-conf-'), 'region.yaml')
    writeFileSync(configPath, stringify(doc))
    args.push('--config', configPath)
  }
  args.push(...(opts.args ?? []))
  const proc = startProc(process.execPath, [...NODE_FLAGS, CLI, ...args], { env: { ...process.env, ...opts.env } })
  const m = await proc.waitFor(/"msg":"listening"/)
  const address = (JSON.parse(m.input) as { address: string }).address
  const port = Number(address.slice(address.lastIndexOf(':') + 1))
  const ferry: Ferry = {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    port, data, proc, configPath,
    logs () {
      return proc.lines.filter(l => l.startsWith('{')).map(l => { try { return JSON.parse(l) as Record<string, unknown> } catch { return { unparsed: l } } })
    },
    async waitForLogs (match, count, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const found = ferry.logs().filter(match)
        if (found.length >= count || Date.now() > deadline) return found
        await new Promise(resolve => setTimeout(resolve, 20))
      }
    },
    async stop () { await proc.stop('SIGTERM') },
    async kill () { await proc.stop('SIGKILL') },
  }
  return ferry
}

/** A region document with one upstream, the shape most tests need. */
export function oneUpstream (url: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { upstreams: [{ name: 'up', url, default: true, ...extra }] }
}
