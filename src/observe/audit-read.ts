// `ferry audit`: the audit log read back for an operator, filtered by time,
// repository pattern and identity; the rotated file first, oldest first.
import { createReadStream, existsSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { globToRegExp } from '../common/glob.ts'

export interface AuditFilter {
  readonly sinceMs: number | undefined
  readonly repository: string | undefined
  readonly user: string | undefined
}

export async function readAudit (file: string, filter: AuditFilter, print: (line: string) => void): Promise<number> {
  const repo = filter.repository === undefined ? undefined : globToRegExp(filter.repository)
  const since = filter.sinceMs === undefined ? undefined : Date.now() - filter.sinceMs
  let n = 0
  for (const path of [`${file}.1`, file]) {
    if (!existsSync(path)) continue
    for await (const line of createInterface({ input: createReadStream(path), crlfDelay: Infinity })) {
      let r: { time?: string, who?: string, repository?: string }
      try { r = JSON.parse(line) as typeof r } catch { continue }
      if (since !== undefined && Date.parse(r.time ?? '') < since) continue
      if (repo !== undefined && !repo.test(r.repository ?? '')) continue
      if (filter.user !== undefined && r.who !== filter.user) continue
      print(line)
      n++
    }
  }
  return n
}

export interface AuditQuery {
  readonly user: string | undefined
  /** A repository pattern (glob). */
  readonly repository: string | undefined
  readonly decision: 'allow' | 'deny' | undefined
  readonly fromMs: number | undefined
  readonly toMs: number | undefined
}

/**
 * The console's audit search: matching records newest first, `n` after
 * skipping `offset`, and how many match in all. Streams the files; holds
 * only the `offset + n` newest matches.
 */
export async function searchAudit (file: string, q: AuditQuery, pageOf: { offset: number, n: number }): Promise<{ records: unknown[], total: number }> {
  const repo = q.repository === undefined ? undefined : globToRegExp(q.repository)
  const keep = pageOf.offset + pageOf.n
  const newest: unknown[] = []
  let total = 0
  for (const path of [`${file}.1`, file]) {
    if (!existsSync(path)) continue
    for await (const line of createInterface({ input: createReadStream(path), crlfDelay: Infinity })) {
      let r: { time?: string, who?: string, repository?: string, decision?: string }
      try { r = JSON.parse(line) as typeof r } catch { continue }
      if (q.user !== undefined && r.who !== q.user) continue
      if (q.decision !== undefined && r.decision !== q.decision) continue
      if (repo !== undefined && !repo.test(r.repository ?? '')) continue
      if (q.fromMs !== undefined || q.toMs !== undefined) {
        const t = Date.parse(r.time ?? '')
        if (q.fromMs !== undefined && !(t >= q.fromMs)) continue
        if (q.toMs !== undefined && !(t < q.toMs)) continue
      }
      total++
      newest.push(r)
      if (newest.length > keep) newest.shift()
    }
  }
  return { records: newest.reverse().slice(pageOf.offset, keep), total }
}
