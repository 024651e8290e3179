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
