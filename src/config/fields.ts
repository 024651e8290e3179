// Typed readers for untrusted YAML values. Each problem is collected with the
// field's path and what was expected, so one `ferry check` reports them all.

export interface ConfigProblem { readonly field: string, readonly expected: string, readonly got: string }

export class ConfigError extends Error {
  readonly file: string
  readonly problems: readonly ConfigProblem[]
  constructor (file: string, problems: readonly ConfigProblem[]) {
    super(problems.map(p => `${file}: ${p.field}: expected ${p.expected}, got ${p.got}`).join('\n'))
    this.name = 'ConfigError'
    this.file = file
    this.problems = problems
  }
}

export function describe (v: unknown): string {
  if (v === undefined) return 'nothing'
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'a list'
  if (typeof v === 'object') return 'a mapping'
  const s = JSON.stringify(v)
  return s.length > 60 ? s.slice(0, 57) + '...' : s
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12, ki: 1024, kib: 1024, mi: 1024 ** 2, mib: 1024 ** 2, gi: 1024 ** 3, gib: 1024 ** 3, ti: 1024 ** 4, tib: 1024 ** 4 }

export class Fields {
  readonly problems: ConfigProblem[] = []

  problem (field: string, expected: string, got: unknown): undefined {
    this.problems.push({ field, expected, got: describe(got) })
    return undefined
  }

  /** A mapping; `known` lists its fields (undefined: any keys, such as names). */
  record (v: unknown, field: string, known: readonly string[] | undefined): Record<string, unknown> | undefined {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return this.problem(field, 'a mapping', v)
    const rec = v as Record<string, unknown>
    if (known !== undefined) for (const key of Object.keys(rec)) {
      if (!known.includes(key)) this.problem(field ? `${field}.${key}` : key, `one of the known fields (${known.join(', ')})`, key)
    }
    return rec
  }

  string (v: unknown, field: string, opts: { pattern?: RegExp, what?: string } = {}): string | undefined {
    if (typeof v !== 'string' || v.length === 0) return this.problem(field, opts.what ?? 'a non-empty string', v)
    if (opts.pattern && !opts.pattern.test(v)) return this.problem(field, opts.what ?? `a string matching ${opts.pattern}`, v)
    return v
  }

  boolean (v: unknown, field: string): boolean | undefined {
    if (typeof v !== 'boolean') return this.problem(field, 'true or false', v)
    return v
  }

  integer (v: unknown, field: string, min: number, max: number): number | undefined {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) return this.problem(field, `an integer from ${min} to ${max}`, v)
    return v
  }

  /** "30s", "5m", "1h", "250ms", or a number of seconds. Returns milliseconds. */
  duration (v: unknown, field: string): number | undefined {
    if (typeof v === 'number' && v >= 0 && Number.isFinite(v)) return v * 1000
    if (typeof v === 'string') {
      const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/.exec(v.trim())
      if (m) return Number(m[1]) * DURATION_UNITS[m[2]!]!
    }
    return this.problem(field, 'a duration such as "30s", "5m", "1h" or a number of seconds', v)
  }

  /** "10GiB", "500MB", or a number of bytes. */
  size (v: unknown, field: string): number | undefined {
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v
    if (typeof v === 'string') {
      const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(v.trim())
      const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined
      if (m && unit !== undefined) return Math.floor(Number(m[1]) * unit)
    }
    return this.problem(field, 'a size such as "10GiB", "500MB" or a number of bytes', v)
  }

  list (v: unknown, field: string): unknown[] | undefined {
    if (!Array.isArray(v)) return this.problem(field, 'a list', v)
    return v
  }

  strings (v: unknown, field: string): string[] | undefined {
    const list = this.list(v, field)
    if (list === undefined) return undefined
    const out: string[] = []
    list.forEach((s, i) => { const r = this.string(s, `${field}[${i}]`); if (r !== undefined) out.push(r) })
    return out
  }
}
