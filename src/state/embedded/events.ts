// The region's event stream as a file of JSON lines, <root>/events.jsonl,
// with each peer's cursor and dead letters beside it, and how far the
// replicator has compacted it (events.compacted).
import { execFile } from 'node:child_process'
import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { StateError } from '../errors.ts'
import type { DeadLetter, EventLog, RegionEvent, StoredEvent } from '../region-state.ts'
import type { StateFiles } from './files.ts'

export class EmbeddedEvents implements EventLog {
  private readonly root: string
  private readonly files: StateFiles

  constructor (root: string, files: StateFiles) {
    this.root = root
    this.files = files
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

  async append (event: RegionEvent): Promise<void> {
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

  async read (after: string, count: number): Promise<StoredEvent[]> {
    const out: StoredEvent[] = []
    await this.scanEvents(after, (id, line) => {
      try { out.push({ id, event: JSON.parse(line) as RegionEvent }) } catch { /* not an event: skipped */ }
      return out.length < count
    })
    return out
  }

  async countAfter (after: string): Promise<number> {
    let n = 0
    await this.scanEvents(after, () => { n++; return true })
    return n
  }

  private get compactedPath (): string { return join(this.root, 'events.compacted') }

  /** Where the kept part of the stream begins: bytes before it were freed. */
  private async compactedTo (): Promise<number> {
    try { return Number((await readFile(this.compactedPath, 'utf8')).trim()) || 0 } catch { return 0 }
  }

  /**
   * An event's id is its byte offset, so the file cannot shrink from the
   * front while other processes append to it. Instead the passed prefix is
   * freed on disk (a hole punched: it reads as zeros and takes no blocks)
   * and readers start at `events.compacted`.
   */
  async compact (cursors: readonly string[]): Promise<boolean> {
    if (cursors.length === 0) return false
    const lowest = Math.min(...cursors.map(c => Number(c) || 0))
    if (lowest <= await this.compactedTo()) return false
    await new Promise<void>((resolve, reject) => {
      execFile('fallocate', ['--punch-hole', '--offset', '0', '--length', String(lowest), this.eventsPath], err => {
        if (err === null) resolve()
        else reject(new StateError('free the passed part of the event stream (fallocate --punch-hole)', err))
      })
    })
    await this.files.write(this.compactedPath, String(lowest))
    return true
  }

  private async scanEvents (after: string, each: (id: string, line: string) => boolean): Promise<void> {
    let fh
    try { fh = await open(this.eventsPath, 'r') } catch { return }
    try {
      let pos = Math.max(Number(after) || 0, await this.compactedTo())
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

  async cursor (peer: string): Promise<string> {
    try { return (await readFile(this.cursorPath(peer), 'utf8')).trim() || '0' } catch { return '0' }
  }

  async setCursor (peer: string, id: string): Promise<void> {
    await this.files.write(this.cursorPath(peer), id)
  }

  /** Read-modify-write of a peer's dead letters, one at a time (the replicator delivers events in parallel). */
  private deadLetterWrites = Promise.resolve()
  private changeDeadLetters (peer: string, change: (all: DeadLetter[]) => DeadLetter[]): Promise<void> {
    const next = this.deadLetterWrites.then(async () => {
      await this.files.write(this.deadPath(peer), JSON.stringify(change(await this.deadLetters(peer))))
    })
    this.deadLetterWrites = next.catch(() => {})
    return next
  }

  async addDeadLetter (peer: string, letter: DeadLetter): Promise<void> {
    await this.changeDeadLetters(peer, all => [...all.filter(d => d.id !== letter.id), letter])
  }

  async deadLetters (peer: string): Promise<DeadLetter[]> {
    return await this.files.readJson<DeadLetter[]>(this.deadPath(peer)) ?? []
  }

  async removeDeadLetter (peer: string, id: string): Promise<void> {
    await this.changeDeadLetters(peer, all => all.filter(d => d.id !== id))
  }

  async close (): Promise<void> {
    while (this.writingEvents) await new Promise(resolve => setImmediate(resolve))
    await this.eventsFile?.close()
    this.eventsFile = undefined
  }
}
