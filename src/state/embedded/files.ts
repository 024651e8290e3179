// Small files under <data>/state, each replaced atomically (write, rename):
// what every embedded part of the region state is made of. A torn file from
// a crash reads as absent; any other failure is a StateError.
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { StateError } from '../errors.ts'

export class StateFiles {
  private readonly made = new Set<string>()
  private seq = 0

  async readText (path: string): Promise<string | undefined> {
    try {
      return await readFile(path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined
      throw new StateError('read its files', err)
    }
  }

  async readJson<T> (path: string): Promise<T | undefined> {
    const text = await this.readText(path)
    if (text === undefined) return undefined
    try { return JSON.parse(text) as T } catch { return undefined }
  }

  /** Write `text` to `path` atomically; true when a folder had to be made for it. */
  async write (path: string, text: string): Promise<boolean> {
    let madeFolder = false
    try {
      const folder = dirname(path)
      if (!this.made.has(folder)) {
        madeFolder = await mkdir(folder, { recursive: true }) !== undefined
        this.made.add(folder)
      }
      const tmp = `${path}.${process.pid}.${++this.seq}.tmp`
      await writeFile(tmp, text)
      await rename(tmp, path)
      return madeFolder
    } catch (err) {
      // a folder removed behind our back (by another process) is made again next time
      this.made.clear()
      throw new StateError('write its files', err)
    }
  }

  /** Remove a file; false when it was not there. */
  async remove (path: string): Promise<boolean> {
    try {
      await rm(path)
      return true
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return false
      throw new StateError('remove its files', err)
    }
  }
}

/** Changes to one key made one at a time in this process, so a read-modify-write never loses another's. */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<void>>()

  /** Resolves when the changes to `key` queued so far have ended (a read after a write sees it). */
  settled (key: string): Promise<void> | undefined {
    return this.tails.get(key)
  }

  run (key: string, work: () => Promise<void>): Promise<void> {
    const next = (this.tails.get(key) ?? Promise.resolve()).then(work)
    const tail = next.catch(() => {})
    this.tails.set(key, tail)
    void tail.then(() => { if (this.tails.get(key) === tail) this.tails.delete(key) })
    return next
  }
}
