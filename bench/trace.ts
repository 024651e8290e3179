// --strace and --perf for the standalone bench modes: one target's
// processes traced while a piece of the load runs, the report printed.
import { execFileSync, spawn } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export type TraceMode = 'strace' | 'perf' | undefined

/** Processes perf sampled: each started with --perf-basic-prof writes /tmp/perf-PID.map, removed when the bench exits. */
const mapped = new Set<number>()
process.once('exit', () => {
  for (const pid of mapped) rmSync(join(tmpdir(), `perf-${pid}.map`), { force: true })
})

/** The trace asked for on the command line, if any. */
export function traceMode (args: readonly string[]): TraceMode {
  return args.includes('--perf') ? 'perf' : args.includes('--strace') ? 'strace' : undefined
}

/**
 * Runs `work` under `strace -c -f` or `perf record -e cpu-clock` on `pids`
 * (nothing when `mode` is undefined or `pids` empty), prints the report
 * under `label` and removes the trace file it wrote in `dir`.
 */
export async function traced<T> (mode: TraceMode, dir: string, pids: number[], label: string, work: () => Promise<T>): Promise<T> {
  if (pids.length === 0 || mode === undefined) return await work()
  const out = join(dir, `trace-${Date.now()}`)
  if (mode === 'perf') for (const pid of pids) mapped.add(pid)
  const trace = mode === 'perf'
    ? spawn('perf', ['record', '-e', 'cpu-clock', '-F', '2000', '-o', out, '-p', pids.join(',')], { stdio: 'ignore' })
    : spawn('strace', ['-c', '-f', '-o', out, ...pids.flatMap(p => ['-p', String(p)])], { stdio: 'ignore' })
  await new Promise(resolve => setTimeout(resolve, 500))
  try {
    return await work()
  } finally {
    trace.kill('SIGINT')
    await new Promise(resolve => trace.once('exit', resolve))
    const report = mode === 'perf'
      ? execFileSync('perf', ['report', '-i', out, '--stdio', '--sort', process.env.PERF_SORT ?? 'sym', '--percent-limit', process.env.PERF_LIMIT ?? '0.7'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
      : readFileSync(out, 'utf8')
    rmSync(out, { force: true })
    process.stdout.write(`${label} (${mode === 'perf' ? 'perf record -e cpu-clock' : 'strace -c -f'}):\n${report}\n`)
  }
}
