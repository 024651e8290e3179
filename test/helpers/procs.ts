// Child processes started by tests: every one is killed when the test
// process exits, whatever happened, and each test also stops its own.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createServer } from 'node:net'
import { basename, join } from 'node:path'
import { outputFile } from './secrets.ts'

const children = new Set<ChildProcess>()
process.on('exit', () => { for (const c of children) c.kill('SIGKILL') })
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => { for (const c of children) c.kill('SIGKILL'); process.exit(1) })

export interface Proc {
  readonly child: ChildProcess
  /** Every line the process printed, stdout and stderr. */
  readonly lines: string[]
  waitFor (re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>
  stop (signal?: NodeJS.Signals): Promise<void>
  readonly exited: Promise<number | null>
}

export function startProc (cmd: string, args: string[], opts: SpawnOptions = {}): Proc {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts })
  children.add(child)
  const lines: string[] = []
  // kept for the run-wide secret check (helpers/secrets.ts)
  const keep = outputFile(basename(cmd))
  const kept = keep === undefined ? undefined : createWriteStream(keep)
  child.on('exit', () => kept?.end())
  const waiters: { re: RegExp, resolve: (m: RegExpExecArray) => void }[] = []
  const exited = new Promise<number | null>(resolve => child.on('exit', code => { children.delete(child); resolve(code) }))
  for (const stream of [child.stdout, child.stderr]) {
    let rest = ''
    stream?.on('data', (d: Buffer) => {
      rest += d.toString()
      const parts = rest.split('\n')
      rest = parts.pop()!
      for (const line of parts) {
        lines.push(line)
        kept?.write(line + '\n')
        for (const w of [...waiters]) {
          const m = w.re.exec(line)
          if (m) { waiters.splice(waiters.indexOf(w), 1); w.resolve(m) }
        }
      }
    })
  }
  return {
    child, lines, exited,
    waitFor (re, timeoutMs = 15_000) {
      for (const line of lines) { const m = re.exec(line); if (m) return Promise.resolve(m) }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${cmd}: no line matching ${re} within ${timeoutMs} ms; last lines:\n${lines.slice(-20).join('\n')}`)), timeoutMs)
        const onExit = (code: number | null): void => { clearTimeout(timer); reject(new Error(`${cmd} exited (${code}) before printing ${re}:\n${lines.slice(-20).join('\n')}`)) }
        exited.then(onExit)
        waiters.push({ re, resolve: m => { clearTimeout(timer); resolve(m) } })
      })
    },
    async stop (signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill(signal)
      const t = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(t)
    },
  }
}

const scratch: string[] = []
process.on('exit', () => { for (const d of scratch) try { rmSync(d, { recursive: true, force: true }) } catch { /* best effort */ } })

/** A temporary folder removed when the test process exits (registries and caches fill gigabytes over a run). */
export function scratchDir (prefix: string, parent = tmpdir()): string {
  const d = mkdtempSync(join(parent, prefix))
  scratch.push(d)
  return d
}

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
    s.on('error', reject)
  })
}

/** Poll `check` until it holds or `timeoutMs` passes; the result of the last check. */
export async function eventually (check: () => boolean, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) return false
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  return true
}
