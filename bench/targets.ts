// The processes a benchmark compares: the upstream itself, ferry, the CNCF
// distribution registry in proxy mode, and nginx proxy_cache. Each is
// started on a free loopback port with its own folder and stopped by PID.
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { userInfo } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { CLI, NODE_FLAGS } from '../test/helpers/ferry.ts'
import { freePort, startProc, type Proc } from '../test/helpers/procs.ts'
import { requireBinary, startRegistry, type Registry } from '../test/helpers/registry.ts'

export interface Target {
  readonly name: string
  readonly url: string
  /** PIDs whose peak RSS counts (all of a target's processes). */
  pids (): number[]
  stop (): Promise<void>
}

export async function waitForPort (port: number, deadlineMs = 15_000): Promise<void> {
  const deadline = Date.now() + deadlineMs
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/v2/`)
      await res.arrayBuffer()
      return
    } catch {
      if (Date.now() > deadline) throw new Error(`nothing answered on port ${port}`)
      await new Promise(r => setTimeout(r, 50))
    }
  }
}

export function upstreamTarget (reg: Registry): Target {
  return { name: 'upstream', url: reg.url, pids: () => [reg.proc.child.pid!], stop: () => reg.stop() }
}

export async function startFerryTarget (dir: string, upstream: string, tagTTL: string, extra: Record<string, unknown> = {}): Promise<Target & { proc: Proc, data: string }> {
  const port = await freePort()
  mkdirSync(dir, { recursive: true })
  const data = join(dir, 'ferry-data')
  const config = join(dir, 'ferry.yaml')
  writeFileSync(config, stringify({
    region: 'bench', listen: `127.0.0.1:${port}`, data, log: { level: 'warn' },
    cache: { maxBytes: '50GiB' },
    upstreams: [{ name: 'up', url: upstream, default: true, tagTTL, staleIfError: '1h' }],
    // the bench's one load generator stands for a fleet: ferry's per-client miss budget (100/s after 2,000)
    // would otherwise refuse part of a 1,000-image cold pull from one address (966 of 1,001 replicated, a run of this session)
    limits: { upstreamFetchesPerSecond: 0 },
    ...extra,
  }))
  const proc = startProc(process.execPath, [...NODE_FLAGS, CLI, 'serve', '--config', config])
  await waitForPort(port)
  return {
    name: 'ferry', url: `http://127.0.0.1:${port}`, proc, data,
    pids: () => childPids(proc.child.pid!),
    stop: () => proc.stop(),
  }
}

export async function startDistributionProxy (dir: string, upstream: string): Promise<Target & { registry: Registry }> {
  mkdirSync(dir, { recursive: true })
  const registry = await startRegistry({ dir, proxy: { remoteurl: upstream } })
  return { name: 'distribution', url: registry.url, registry, pids: () => [registry.proc.child.pid!], stop: () => registry.stop() }
}

export async function startNginx (dir: string, upstreamHost: string, tagTTLSeconds: number): Promise<Target> {
  requireBinary('nginx', 'nginx')
  const port = await freePort()
  for (const sub of ['cache', 'client_temp', 'proxy_temp', 'fastcgi_temp', 'uwsgi_temp', 'scgi_temp']) mkdirSync(join(dir, sub), { recursive: true })
  const template = readFileSync(new URL('./nginx.conf.template', import.meta.url), 'utf8')
  const conf = join(dir, 'nginx.conf')
  writeFileSync(conf, template.replaceAll('{{PREFIX}}', dir).replaceAll('{{UPSTREAM}}', upstreamHost)
    .replaceAll('{{LISTEN}}', `127.0.0.1:${port}`).replaceAll('{{TAG_TTL}}', `${tagTTLSeconds}s`).replaceAll('{{USER}}', userInfo().username))
  const proc = startProc('nginx', ['-c', conf, '-p', dir])
  await waitForPort(port)
  return { name: 'nginx', url: `http://127.0.0.1:${port}`, pids: () => childPids(proc.child.pid!), stop: () => proc.stop('SIGQUIT') }
}

/** A process and its children (nginx workers, ferry workers). */
export function childPids (pid: number): number[] {
  try {
    const out = execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' })
    return [pid, ...out.split('\n').map(s => Number(s.trim())).filter(n => n > 0)]
  } catch {
    return [pid]
  }
}

/** Reset the kernel's peak-RSS counter of these processes (Linux clear_refs 5). */
export function resetPeak (pids: number[]): void {
  for (const pid of pids) try { writeFileSync(`/proc/${pid}/clear_refs`, '5') } catch { /* gone */ }
}

/** Sum of VmHWM over the processes, in bytes. */
export function peakRss (pids: number[]): number {
  let total = 0
  for (const pid of pids) {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
      if (m) total += Number(m[1]) * 1024
    } catch { /* gone */ }
  }
  return total
}

/** CPU seconds (user + system) these processes have used so far, from /proc/PID/stat. */
export function cpuSeconds (pids: number[]): number {
  const tick = 100 // USER_HZ on Linux
  let total = 0
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      // fields after the command name (which may hold spaces) start after the last ")"
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      total += (Number(fields[11]) + Number(fields[12])) / tick
    } catch { /* gone */ }
  }
  return total
}
