// The whole test run's secret check: tests register every secret they use
// (passwords, tokens, robot secrets) and every extra file ferry wrote (audit
// logs); every process the tests start has its output kept. After tap,
// test/run.ts scans all of it: no secret may appear anywhere.
import { appendFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'

const dir = process.env.FERRY_TEST_RUN

/** Where a child process's output is kept for the scan, or undefined outside test/run.ts. */
export function outputFile (name: string): string | undefined {
  if (dir === undefined) return undefined
  mkdirSync(join(dir, 'output'), { recursive: true })
  return join(dir, 'output', `${name}-${process.pid}-${Math.random().toString(36).slice(2, 8)}.log`)
}

export function registerSecret (...secrets: string[]): void {
  if (dir === undefined) return
  for (const s of secrets) if (s.length >= 8) appendFileSync(join(dir, 'secrets.txt'), JSON.stringify(s) + '\n')
}

/** A file ferry wrote besides its output (an audit log), to scan too. */
export function registerFile (path: string): void {
  if (dir === undefined) return
  appendFileSync(join(dir, 'files.txt'), JSON.stringify(path) + '\n')
}
