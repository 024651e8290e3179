// Region state for one process with no services: small JSON files under
// <data>/state, each replaced atomically (write + rename), with an in-memory
// LRU in front so hot tags cost no disk read.
import { createHash } from 'node:crypto'
import { mkdir, open, readFile, rename, writeFile, type FileHandle } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { LRUCache } from 'lru-cache'
import { StateError } from './state-errors.ts'
import type { DeadLetter, ListAnswer, RegionEvent, RegionState, RobotRecord, StoredEvent, TagEntry, TagKey } from './region-state.ts'

const NONE = Symbol('none')

export class EmbeddedState implements RegionState {
  private readonly root: string
  private readonly tags = new LRUCache<string, readonly TagEntry[]>({ max: 100_000 })
  private readonly manifestTypes = new LRUCache<string, string | typeof NONE>({ max: 200_000 })
  private seq = 0
  private readonly made = new Set<string>()

  constructor (root: string) { this.root = root }

  private tagPath (k: TagKey): string { return join(this.root, 'tags', k.upstream, k.repo, `${k.tag}.json`) }

  /** The in-memory key: a path join per lookup showed in the warm-pull profile. */
  private static tagKey (k: TagKey): string { return `${k.upstream}\n${k.repo}\n${k.tag}` }

  async getTag (key: TagKey): Promise<readonly TagEntry[]> {
    const memoryKey = EmbeddedState.tagKey(key)
    const hit = this.tags.get(memoryKey)
    if (hit !== undefined) return hit
    const entries = await this.readJson<TagEntry[]>(this.tagPath(key)) ?? []
    this.tags.set(memoryKey, entries)
    return entries
  }

  async putTag (key: TagKey, entries: readonly TagEntry[]): Promise<void> {
    this.tags.set(EmbeddedState.tagKey(key), entries)
    await this.writeAtomic(this.tagPath(key), JSON.stringify(entries))
  }

  private manifestPath (digest: string): string {
    const [alg, hex] = digest.split(':') as [string, string]
    return join(this.root, 'manifests', alg, hex.slice(0, 2), hex)
  }

  async getManifestType (digest: string): Promise<string | undefined> {
    const hit = this.manifestTypes.get(digest)
    if (hit !== undefined) return hit === NONE ? undefined : hit
    let type: string | undefined
    try { type = await readFile(this.manifestPath(digest), 'utf8') } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new StateError('read its files', err) }
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

  // The event stream is a file of JSON lines; an event's id is the byte
  // offset where the next line starts, so a reader resumes with one seek.
  // Only whole lines count: a line being appended is read next time.
  private get eventsPath (): string { return join(this.root, 'events.jsonl') }

  // One handle, opened for appending once, and one write for all the events
  // that arrived while the last write was in flight: a cold pull records
  // four events, and a mkdir, an open, a write and a close for each showed
  // in its profile. With O_APPEND every write lands whole at the end, also
  // when other processes (workers) append to the same file.
  private eventsFile: FileHandle | undefined
  private readonly queuedEvents: { line: string, done: (err?: unknown) => void }[] = []
  private writingEvents = false

  async appendEvent (event: RegionEvent): Promise<void> {
    const line = JSON.stringify(event) + '\n'
    await new Promise<void>((resolve, reject) => {
      this.queuedEvents.push({ line, done: err => err === undefined ? resolve() : reject(err) })
      if (!this.writingEvents) void this.writeEvents()
    })
  }

  private async writeEvents (): Promise<void> {
    this.writingEvents = true
    while (this.queuedEvents.length > 0) {
      const batch = this.queuedEvents.splice(0)
      try {
        if (this.eventsFile === undefined) {
          await mkdir(this.root, { recursive: true })
          this.eventsFile = await open(this.eventsPath, 'a')
        }
        let bytes = Buffer.from(batch.map(e => e.line).join(''))
        while (bytes.length > 0) {
          const { bytesWritten } = await this.eventsFile.write(bytes)
          bytes = bytes.subarray(bytesWritten)
        }
        for (const e of batch) e.done()
      } catch (err) {
        for (const e of batch) e.done(new StateError('append to the event stream', err))
        // opened again for the next batch: the folder may have been restored meanwhile
        await this.eventsFile?.close().catch(() => {})
        this.eventsFile = undefined
      }
    }
    this.writingEvents = false
  }

  async readEvents (after: string, count: number): Promise<StoredEvent[]> {
    const out: StoredEvent[] = []
    await this.scanEvents(after, (id, line) => {
      try { out.push({ id, event: JSON.parse(line) as RegionEvent }) } catch { /* not an event: skipped */ }
      return out.length < count
    })
    return out
  }

  async countEventsAfter (after: string): Promise<number> {
    let n = 0
    await this.scanEvents(after, () => { n++; return true })
    return n
  }

  private async scanEvents (after: string, each: (id: string, line: string) => boolean): Promise<void> {
    let fh
    try { fh = await open(this.eventsPath, 'r') } catch { return }
    try {
      let pos = Number(after) || 0
      const buf = Buffer.allocUnsafe(256 * 1024)
      let rest = Buffer.alloc(0)
      let lineStart = pos
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, pos)
        if (bytesRead === 0) return
        pos += bytesRead
        let chunk = Buffer.concat([rest, buf.subarray(0, bytesRead)])
        for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10)) {
          const line = chunk.subarray(0, nl).toString('utf8')
          lineStart += nl + 1
          chunk = chunk.subarray(nl + 1)
          if (line.length > 0 && !each(String(lineStart), line)) return
        }
        rest = Buffer.from(chunk)
      }
    } finally {
      await fh.close()
    }
  }

  private cursorPath (peer: string): string { return join(this.root, 'replication', peer, 'cursor') }
  private deadPath (peer: string): string { return join(this.root, 'replication', peer, 'dead.json') }

  async getCursor (peer: string): Promise<string> {
    try { return (await readFile(this.cursorPath(peer), 'utf8')).trim() || '0' } catch { return '0' }
  }

  async setCursor (peer: string, id: string): Promise<void> {
    await this.writeAtomic(this.cursorPath(peer), id)
  }

  /** Read-modify-write of a peer's dead letters, one at a time (the replicator delivers events in parallel). */
  private deadLetterWrites = Promise.resolve()
  private changeDeadLetters (peer: string, change: (all: DeadLetter[]) => DeadLetter[]): Promise<void> {
    const next = this.deadLetterWrites.then(async () => {
      await this.writeAtomic(this.deadPath(peer), JSON.stringify(change(await this.deadLetters(peer))))
    })
    this.deadLetterWrites = next.catch(() => {})
    return next
  }

  async addDeadLetter (peer: string, letter: DeadLetter): Promise<void> {
    await this.changeDeadLetters(peer, all => [...all.filter(d => d.id !== letter.id), letter])
  }

  async deadLetters (peer: string): Promise<DeadLetter[]> {
    return await this.readJson<DeadLetter[]>(this.deadPath(peer)) ?? []
  }

  async removeDeadLetter (peer: string, id: string): Promise<void> {
    await this.changeDeadLetters(peer, all => all.filter(d => d.id !== id))
  }

  async robots (): Promise<RobotRecord[]> {
    return await this.readJson<RobotRecord[]>(join(this.root, 'robots.json')) ?? []
  }

  async putRobots (robots: readonly RobotRecord[]): Promise<void> {
    await this.writeAtomic(join(this.root, 'robots.json'), JSON.stringify(robots))
  }

  async close (): Promise<void> {
    while (this.writingEvents) await new Promise(resolve => setImmediate(resolve))
    await this.eventsFile?.close()
    this.eventsFile = undefined
  }

  private async readJson<T> (path: string): Promise<T | undefined> {
    let text: string
    try { text = await readFile(path, 'utf8') } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw new StateError('read its files', err)
    }
    try { return JSON.parse(text) as T } catch { return undefined } // a torn file from a crash counts as absent
  }

  private async writeAtomic (path: string, text: string): Promise<void> {
    try {
      const folder = dirname(path)
      if (!this.made.has(folder)) {
        await mkdir(folder, { recursive: true })
        this.made.add(folder)
      }
      const tmp = `${path}.${process.pid}.${++this.seq}.tmp`
      await writeFile(tmp, text)
      await rename(tmp, path)
    } catch (err) {
      throw new StateError('write its files', err)
    }
  }
}
