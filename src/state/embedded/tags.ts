// Tags as files: <root>/tags/<repository>/_tags/<tag>, a JSON list of
// entries. Repository components never start with "_", so a repository's
// own tags never meet another's path. A hot tag costs no disk read (LRU),
// except when several processes write the folder (workers): then every
// lookup reads the file (small, in the page cache), so a tag pushed through
// one worker is what every other worker answers next. (A file's mtime is no
// version here: the kernel's coarse clock gives two writes within a few
// milliseconds the same one.)
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { StateError } from '../errors.ts'
import type { TagEntry, Tags } from '../region-state.ts'
import { withEntry, withoutAccept } from '../tag-order.ts'
import { KeyedQueue, type StateFiles } from './files.ts'
import { boundedCache } from '../../common/bounded-cache.ts'

export class EmbeddedTags implements Tags {
  private readonly root: string
  private readonly files: StateFiles
  private readonly memory = boundedCache<string, readonly TagEntry[]>(100_000)
  private readonly queue = new KeyedQueue()
  private readonly shared: boolean

  constructor (root: string, files: StateFiles, shared: boolean) {
    this.root = join(root, 'tags')
    this.files = files
    this.shared = shared
  }


  private folder (repo: string): string { return join(this.root, repo, '_tags') }
  private path (repo: string, tag: string): string { return join(this.folder(repo), tag) }
  /** The in-memory key: a path join per lookup showed in the warm-pull profile. */
  private static key (repo: string, tag: string): string { return `${repo}\n${tag}` }

  async get (repo: string, tag: string): Promise<readonly TagEntry[]> {
    const key = EmbeddedTags.key(repo, tag)
    const pending = this.queue.settled(key)
    if (pending !== undefined) await pending
    const hit = this.shared ? undefined : this.memory.get(key)
    if (hit !== undefined) return hit
    const entries = await this.files.readJson<TagEntry[]>(this.path(repo, tag)) ?? []
    if (!this.shared) this.memory.set(key, entries)
    return entries
  }

  private async change (repo: string, tag: string, change: (entries: readonly TagEntry[]) => readonly TagEntry[]): Promise<void> {
    await this.queue.run(EmbeddedTags.key(repo, tag), async () => {
      const key = EmbeddedTags.key(repo, tag)
      const current = (this.shared ? undefined : this.memory.get(key)) ?? await this.files.readJson<TagEntry[]>(this.path(repo, tag)) ?? []
      const next = change(current)
      this.memory.delete(key)
      if (next.length === 0) await this.files.remove(this.path(repo, tag))
      else await this.files.write(this.path(repo, tag), JSON.stringify(next))
      if (!this.shared) this.memory.set(key, next)
    })
  }

  async put (repo: string, tag: string, entry: TagEntry): Promise<void> {
    await this.change(repo, tag, entries => withEntry(entries, entry))
  }

  async drop (repo: string, tag: string, accept: readonly string[]): Promise<void> {
    await this.change(repo, tag, entries => withoutAccept(entries, accept))
  }

  async remove (repo: string, tag: string): Promise<boolean> {
    let had = false
    await this.queue.run(EmbeddedTags.key(repo, tag), async () => {
      this.memory.delete(EmbeddedTags.key(repo, tag))
      had = await this.files.remove(this.path(repo, tag))
    })
    return had
  }

  async list (repo: string): Promise<string[]> {
    let names: string[]
    try {
      names = await readdir(this.folder(repo))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw new StateError('list tags', err)
    }
    return names.filter(n => !n.endsWith('.tmp')).sort()
  }
}
