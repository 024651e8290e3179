// How often each tag (and manifest digest) of a repository was pulled and
// when last, for the console's tag lists. Kept in memory for the 100,000
// most recently pulled, written to the data folder every minute and on
// close, one file per process; a reader sums the files.
import type { LRUCache } from 'lru-cache'
import { boundedCache } from '../common/bounded-cache.ts'
import { KeptFiles } from './kept-files.ts'

const KEEP = 100_000

export interface Pulls { count: number, last: number }

export class Usage {
  private readonly files: KeptFiles
  private readonly pulls: LRUCache<string, Pulls> = boundedCache(KEEP)
  private timer: NodeJS.Timeout | undefined
  private dirty = false

  constructor (dir: string, processId: string) {
    this.files = new KeptFiles(dir, 'console-usage', processId)
  }

  async start (): Promise<void> {
    for (const [k, v] of pullsIn(await this.files.readOwn())) this.pulls.set(k, v)
    this.timer = setInterval(() => { void this.flush().catch(() => {}) }, 60_000)
    this.timer.unref()
  }

  /** A manifest of `repo` served, asked for by `reference` (a tag or a digest). */
  pulled (repo: string, reference: string): void {
    const key = `${repo}\n${reference}`
    const p = this.pulls.get(key)
    if (p === undefined) this.pulls.set(key, { count: 1, last: Date.now() })
    else { p.count++; p.last = Date.now() }
    this.dirty = true
  }

  async flush (): Promise<void> {
    if (!this.dirty) return
    this.dirty = false
    await this.files.write([...this.pulls.entries()])
  }

  async close (): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer)
    await this.flush().catch(() => {})
  }

  /** Pulls of each of `references` of `repo`, over every process's file (this one's as of now). */
  async of (repo: string, references: readonly string[]): Promise<Map<string, Pulls>> {
    await this.flush().catch(() => {})
    const out = new Map<string, Pulls>()
    const wanted = new Set(references.map(r => `${repo}\n${r}`))
    for (const kept of await this.files.readAll()) {
      for (const [k, v] of pullsIn(kept)) {
        if (!wanted.has(k)) continue
        const ref = k.slice(repo.length + 1)
        const had = out.get(ref)
        out.set(ref, had === undefined ? { ...v } : { count: had.count + v.count, last: Math.max(had.last, v.last) })
      }
    }
    return out
  }
}

function pullsIn (parsed: unknown): [string, Pulls][] {
  if (!Array.isArray(parsed)) return []
  return parsed.filter((e): e is [string, Pulls] => Array.isArray(e) && typeof e[0] === 'string' && typeof e[1]?.count === 'number' && typeof e[1]?.last === 'number')
}
