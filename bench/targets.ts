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

/** `upstreamExtra`: more settings of its one upstream (`aliases`, for a client that names the registry otherwise). */
export async function startFerryTarget (dir: string, upstream: string, tagTTL: string, extra: Record<string, unknown> = {}, nodeFlags: string[] = [], upstreamExtra: Record<string, unknown> = {}): Promise<Target & { proc: Proc, data: string }> {
  const port = await freePort()
  mkdirSync(dir, { recursive: true })
  const data = join(dir, 'ferry-data')
  const config = join(dir, 'ferry.yaml')
  writeFileSync(config, stringify({
    region: 'bench', listen: `127.0.0.1:${port}`, data, log: { level: 'warn' },
    cache: { maxBytes: '50GiB' },
    upstreams: [{ name: 'up', url: upstream, default: true, tagTTL, staleIfError: '1h', ...upstreamExtra }],
    // the bench's one load generator stands for a fleet: ferry's per-client miss budget (100/s after 2,000)
    // would otherwise refuse part of a 1,000-image cold pull from one address (966 of 1,001 replicated, a run of this session)
    limits: { upstreamFetchesPerSecond: 0 },
    ...extra,
  }))
  // FERRY_BENCH_CLI: another build's dist/cli.js, to measure it in the same harness (a before and after)
  const proc = startProc(process.execPath, [...NODE_FLAGS, ...nodeFlags, process.env.FERRY_BENCH_CLI ?? CLI, 'serve', '--config', config])
  await waitForPort(port)
  return {
    name: 'ferry', url: `http://127.0.0.1:${port}`, proc, data,
    pids: () => childPids(proc.child.pid!),
    stop: () => proc.stop(),
  }
}

/** A bare Node.js proxy of floor-proxy.ts in `mode` ('pipe', 'hash+file', ...) in front of `upstream`, its files in `dir`. */
export async function startFloorProxy (mode: string, upstream: string, dir: string): Promise<Target> {
  const port = await freePort()
  mkdirSync(dir, { recursive: true })
  const proc = startProc(process.execPath, [...NODE_FLAGS, join(import.meta.dirname, 'floor-proxy.ts'), mode, upstream, String(port), dir])
  await waitForPort(port)
  return { name: `node ${mode}`, url: `http://127.0.0.1:${port}`, pids: () => [proc.child.pid!], stop: () => proc.stop() }
}

/** The bare node:http server of node-limit.ts, answering `paths` from memory. */
export async function startNodeLimit (dir: string, upstream: string, paths: [string, string | null][], nodeFlags: string[] = []): Promise<Target> {
  mkdirSync(dir, { recursive: true })
  const port = await freePort()
  const file = join(dir, 'paths.json')
  writeFileSync(file, JSON.stringify(paths))
  const proc = startProc(process.execPath, [...NODE_FLAGS, ...nodeFlags, new URL('./node-limit.ts', import.meta.url).pathname, String(port), upstream, file])
  await proc.waitFor(/^listening$/, 60_000)
  return { name: 'node limit', url: `http://127.0.0.1:${port}`, pids: () => [proc.child.pid!], stop: () => proc.stop() }
}

/**
 * CPU seconds of `pids` once they have gone quiet (less than 10 ms in 300 ms):
 * what a cold pull cost a target includes what it does after the client has
 * its bytes (ferry: the fsync and commit; distribution: its second fetch of
 * the blob, for its store).
 */
export async function cpuSecondsSettled (pids: () => number[], maxMs = 30_000): Promise<number> {
  const deadline = Date.now() + maxMs
  let last = cpuSeconds(pids())
  for (;;) {
    await new Promise(resolve => setTimeout(resolve, 300))
    const now = cpuSeconds(pids())
    if (now - last < 0.01 || Date.now() > deadline) return now
    last = now
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

/**
 * Write back every dirty page before a timed cold pull: what earlier steps
 * wrote (the seeding, another target's cache) would otherwise be flushed
 * during it, and the kernel charges the writer that meets its dirty limits.
 */
export function settleDisk (): void {
  execFileSync('sync')
  // and start from the same page cache, whoever went before: on this VM, writing into pages the guest
  // has not touched before costs more (seen: dd of 512 MiB, 0.51 s of system time the first time,
  // 0.16-0.21 s after); needs root, else skipped
  try { writeFileSync('/proc/sys/vm/drop_caches', '1') } catch { /* not root: the runs share what there is */ }
}

/** Read a file once, so the upstream serves it from memory as it would have before settleDisk. */
export function warmFile (path: string): void {
  execFileSync('cat', [path], { stdio: ['ignore', 'ignore', 'ignore'] })
}

/** Where docker-registry keeps a blob's bytes under its folder. */
export function upstreamBlobPath (registryDir: string, digest: string): string {
  const hex = digest.slice('sha256:'.length)
  return join(registryDir, 'data', 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data')
}
