// Region state for one process with no services: small JSON files under
// <data>/state, each replaced atomically (write + rename), with an in-memory
// LRU in front so hot tags cost no disk read.
import { createHash } from 'node:crypto'
import { appendFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { LRUCache } from 'lru-cache'
import type { CommittedBlob, ListAnswer, RegionState, TagEntry, TagKey } from './region-state.ts'

const NONE = Symbol('none')

export class EmbeddedState implements RegionState {
  private readonly root: string
  private readonly tags = new LRUCache<string, readonly TagEntry[]>({ max: 100_000 })
  private readonly manifestTypes = new LRUCache<string, string | typeof NONE>({ max: 200_000 })
  private seq = 0
  private readonly made = new Set<string>()

  constructor (root: string) { this.root = root }

  private tagPath (k: TagKey): string { return join(this.root, 'tags', k.upstream, k.repo, `${k.tag}.json`) }

  async getTag (key: TagKey): Promise<readonly TagEntry[]> {
    const path = this.tagPath(key)
    const hit = this.tags.get(path)
    if (hit !== undefined) return hit
    const entries = await this.readJson<TagEntry[]>(path) ?? []
    this.tags.set(path, entries)
    return entries
  }

  async putTag (key: TagKey, entries: readonly TagEntry[]): Promise<void> {
    const path = this.tagPath(key)
    this.tags.set(path, entries)
    await this.writeAtomic(path, JSON.stringify(entries))
  }

  private manifestPath (digest: string): string {
    const [alg, hex] = digest.split(':') as [string, string]
    return join(this.root, 'manifests', alg, hex.slice(0, 2), hex)
  }

  async getManifestType (digest: string): Promise<string | undefined> {
    const hit = this.manifestTypes.get(digest)
    if (hit !== undefined) return hit === NONE ? undefined : hit
    let type: string | undefined
    try { type = await readFile(this.manifestPath(digest), 'utf8') } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err }
    // absence is not cached: another writer (a fill) may add it any moment
    if (type !== undefined) this.manifestTypes.set(digest, type)
    return type
  }

  async putManifestType (digest: string, mediaType: string): Promise<void> {
    this.manifestTypes.set(digest, mediaType)
    await this.writeAtomic(this.manifestPath(digest), mediaType)
  }

  private listPath (upstream: string, repo: string, key: string): string {
    return join(this.root, 'lists', upstream, repo, createHash('sha256').update(key).digest('hex').slice(0, 32) + '.json')
  }

  async getList (upstream: string, repo: string, key: string): Promise<ListAnswer | undefined> {
    return await this.readJson<ListAnswer>(this.listPath(upstream, repo, key))
  }

  async putList (upstream: string, repo: string, key: string, answer: ListAnswer): Promise<void> {
    await this.writeAtomic(this.listPath(upstream, repo, key), JSON.stringify(answer))
  }

  /** One JSON line per blob; the id is the line number. */
  async appendCommitted (blob: CommittedBlob): Promise<void> {
    await mkdir(this.root, { recursive: true })
    await appendFile(join(this.root, 'committed.jsonl'), JSON.stringify(blob) + '\n')
  }

  async readCommitted (after: string, count: number): Promise<{ id: string, blob: CommittedBlob }[]> {
    let text = ''
    try { text = await readFile(join(this.root, 'committed.jsonl'), 'utf8') } catch { return [] }
    const from = Number(after) || 0
    const out: { id: string, blob: CommittedBlob }[] = []
    const lines = text.split('\n')
    for (let i = from; i < lines.length && out.length < count; i++) {
      try { out.push({ id: String(i + 1), blob: JSON.parse(lines[i]!) as CommittedBlob }) } catch { /* a torn last line */ }
    }
    return out
  }

  async close (): Promise<void> {}

  private async readJson<T> (path: string): Promise<T | undefined> {
    let text: string
    try { text = await readFile(path, 'utf8') } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
    try { return JSON.parse(text) as T } catch { return undefined } // a torn file from a crash counts as absent
  }

  private async writeAtomic (path: string, text: string): Promise<void> {
    const folder = dirname(path)
    if (!this.made.has(folder)) {
      await mkdir(folder, { recursive: true })
      this.made.add(folder)
    }
    const tmp = `${path}.${process.pid}.${++this.seq}.tmp`
    await writeFile(tmp, text)
    await rename(tmp, path)
  }
}
