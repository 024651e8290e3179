// Durations and sizes as operators write them, in the region file and on the
// command line: one grammar for both.

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const SIZE_UNITS: Record<string, number> = {
  '': 1, b: 1, k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
  ki: 1024, kib: 1024, mi: 1024 ** 2, mib: 1024 ** 2, gi: 1024 ** 3, gib: 1024 ** 3, ti: 1024 ** 4, tib: 1024 ** 4,
}

export const DURATION_GRAMMAR = 'a duration such as "250ms", "30s", "5m", "1h", "7d", or a number of seconds'
export const SIZE_GRAMMAR = 'a size such as "64MiB", "10GB", "20GiB", or a number of bytes'

/** Milliseconds, or undefined when `v` is not a duration. */
export function parseDuration (v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? v * 1000 : undefined
  if (typeof v !== 'string') return undefined
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/.exec(v.trim())
  return m === null ? undefined : Number(m[1]) * DURATION_UNITS[m[2]!]!
}

/** Bytes, or undefined when `v` is not a size. */
export function parseSize (v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : undefined
  if (typeof v !== 'string') return undefined
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(v.trim())
  const unit = m === null ? undefined : SIZE_UNITS[m[2]!.toLowerCase()]
  if (m === null || unit === undefined) return undefined
  const bytes = Math.floor(Number(m[1]) * unit)
  return Number.isSafeInteger(bytes) ? bytes : undefined
}
