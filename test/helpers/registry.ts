// The upstream: Debian's docker-registry (CNCF distribution 2.8), one process
// per test, on 127.0.0.1 with its own folder. Its access log tells what it
// was asked.
import { execFileSync } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { freePort, scratchDir, startProc, type Proc } from './procs.ts'

export interface Registry {
  readonly url: string
  readonly host: string
  readonly port: number
  readonly dir: string
  readonly proc: Proc
  /** Requests it served so far: method, path (with query) and status. */
  requests (): { method: string, path: string, status: number }[]
  /** Requests of `method` whose path has `pathPart` (and answered `status`, when given). */
  count (method: string, pathPart: string | RegExp, status?: number): number
  /**
   * Resolves once the access log holds every request answered before the call.
   * The registry writes a request's line after its answer, and the line reaches
   * this process through a pipe: a client can have all its bytes before the
   * line is read, so a count taken right after can miss it (and the next
   * count wrongly include it). A marker request's own line shows the log is
   * caught up; markers are left out of requests().
   */
  caughtUp (): Promise<void>
  stop (): Promise<void>
  /** Start again on the same port and folder (after stop). */
  restart (): Promise<void>
}

export function requireBinary (name: string, pkg: string): void {
  try { execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }) } catch {
    throw new Error(`${name} is not installed: run "apt-get install -y ${pkg}" (or bash .ci/run, which installs it)`)
  }
}

export interface RegistryOptions {
  auth?: Record<string, unknown>
  proxy?: { remoteurl: string }
  port?: number
  dir?: string
  tls?: { certificate: string, key: string }
}

const MARK = '/v2/?ferry-log-mark='

export async function startRegistry (opts: RegistryOptions = {}): Promise<Registry> {
  requireBinary('docker-registry', 'docker-registry')
  const dir = opts.dir ?? scratchDir('ferry-upstream-')
  mkdirSync(dir, { recursive: true })
  const port = opts.port ?? await freePort()
  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: 'warn', formatter: 'text', accesslog: { disabled: false } },
    storage: { filesystem: { rootdirectory: join(dir, 'data') }, delete: { enabled: true } },
    http: { addr: `127.0.0.1:${port}`, secret: 'test-secret-not-used-for-anything' },
  }
  if (opts.auth) config.auth = opts.auth
  if (opts.proxy) config.proxy = opts.proxy
  if (opts.tls) (config.http as Record<string, unknown>).tls = opts.tls
  const configPath = join(dir, 'config.yml')
  writeFileSync(configPath, stringify(config))
  let proc = await launch(configPath, port, opts.tls !== undefined)
  const earlier: string[] = []
  let marks = 0
  const reg: Registry = {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    port,
    dir,
    get proc () { return proc },
    requests () {
      const out: { method: string, path: string, status: number }[] = []
      for (const line of [...earlier, ...proc.lines]) {
        const m = /"(GET|HEAD|POST|PUT|PATCH|DELETE) (\S+) HTTP\/[\d.]+" (\d{3})/.exec(line)
        if (m && !m[2]!.startsWith(MARK)) out.push({ method: m[1]!, path: m[2]!, status: Number(m[3]) })
      }
      return out
    },
    count (method, pathPart, status) {
      return reg.requests().filter(r => r.method === method && (status === undefined || r.status === status) && (typeof pathPart === 'string' ? r.path.includes(pathPart) : pathPart.test(r.path))).length
    },
    async caughtUp () {
      const mark = `${MARK}${++marks}`
      await (await fetch(`${reg.url}${mark}`)).arrayBuffer()
      const deadline = Date.now() + 30_000
      while (!proc.lines.some(l => l.includes(`GET ${mark} `))) {
        if (Date.now() > deadline) throw new Error(`docker-registry's access log did not show ${mark} within 30 s`)
        await new Promise(r => setTimeout(r, 10))
      }
    },
    async stop () { await proc.stop() },
    async restart () { earlier.push(...proc.lines); proc = await launch(configPath, port, opts.tls !== undefined) },
  }
  return reg
}

async function launch (configPath: string, port: number, tls: boolean): Promise<Proc> {
  const proc = startProc('docker-registry', ['serve', configPath])
  // it prints nothing when ready: poll the port
  const deadline = Date.now() + 15_000
  for (;;) {
    try {
      await new Promise<void>((resolve, reject) => {
        const s = connect(port, '127.0.0.1', () => { s.destroy(); resolve() })
        s.on('error', reject)
      })
      if (!tls) await (await fetch(`http://127.0.0.1:${port}/v2/`)).arrayBuffer()
      return proc
    } catch {
      if (Date.now() > deadline || proc.child.exitCode !== null) throw new Error(`docker-registry did not start:\n${proc.lines.join('\n')}`)
      await new Promise(r => setTimeout(r, 50))
    }
  }
}

export function cleanupDir (dir: string): void {
  rmSync(dir, { recursive: true, force: true })
}
