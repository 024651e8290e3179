// Links as files, one per link, as distribution keeps them:
// <root>/links/<repository>/_blobs/<alg>/<hex> (and _manifests), holding
// when the link was made; referrers under _referrers/<subject>/<digest>.
// Every process of the machine sees a link the moment it exists. Positive
// answers are remembered for a short while, so a hot blob costs no read;
// an unlink by another process is seen within that while.
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { boundedCache } from '../../common/bounded-cache.ts'
import { Semaphore } from '../../common/concurrency.ts'
import { StateError } from '../errors.ts'
import type { Link, LinkKind, Links } from '../region-state.ts'
import type { StateFiles } from './files.ts'

const KIND_FOLDER: Record<LinkKind, string> = { blob: '_blobs', manifest: '_manifests' }
const REMEMBER_MS = 30_000
// Folders a walk of the repositories reads at a time, of the thread pool's 16. All at once, a walk of 10,000
// queued 10,000 reads ahead of fills' writes and warm pulls' reads: a warm 256 MiB pull beside back-to-back
// walks went from 2,500 MB/s to 12. A walk running beside a pull, measured (npm run bench -- --catalog-flood):
// 8 at a time, warm 2,976 MB/s and a walk alone 232 ms; 4, 3,296 and 303 ms; 16, 809 and 236 ms.
const WALK_READS = 8

async function names (folder: string): Promise<string[]> {
  try {
    return await readdir(folder)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return []
    throw new StateError('list links', err)
  }
}

export class EmbeddedLinks implements Links {
  private readonly root: string
  private readonly files: StateFiles
  private readonly known = boundedCache<string, number>(50_000, { ttl: REMEMBER_MS })
  private foldersMade = 0

  constructor (root: string, files: StateFiles) {
    this.root = join(root, 'links')
    this.files = files
  }

  private path (repo: string, kind: LinkKind, digest: string): string {
    const [alg, hex] = digest.split(':') as [string, string]
    return join(this.root, repo, KIND_FOLDER[kind], alg, hex)
  }

  async linked (repo: string, kind: LinkKind, digest: string): Promise<number | undefined> {
    const key = `${repo}\n${kind}\n${digest}`
    const hit = this.known.get(key)
    if (hit !== undefined) return hit
    const text = await this.files.readText(this.path(repo, kind, digest))
    if (text === undefined) return undefined
    const at = Number(text) || 0
    this.known.set(key, at)
    return at
  }

  async link (repo: string, kind: LinkKind, digest: string): Promise<void> {
    const at = Date.now()
    // a new folder may be a new repository: a listing kept from before is out of date (folders are never removed)
    if (await this.files.write(this.path(repo, kind, digest), String(at))) this.foldersMade++
    this.known.set(`${repo}\n${kind}\n${digest}`, at)
  }

  async unlink (repo: string, kind: LinkKind, digest: string): Promise<boolean> {
    this.known.delete(`${repo}\n${kind}\n${digest}`)
    return await this.files.remove(this.path(repo, kind, digest))
  }

  async unlinkIfOlder (repo: string, kind: LinkKind, digest: string, before: number): Promise<boolean> {
    // read, compare, remove: one machine, and a push that links again in between is at most milliseconds away
    const text = await this.files.readText(this.path(repo, kind, digest))
    if (text === undefined || (Number(text) || 0) >= before) return false
    return await this.unlink(repo, kind, digest)
  }

  async list (repo: string, kind: LinkKind): Promise<Link[]> {
    const out: Link[] = []
    const base = join(this.root, repo, KIND_FOLDER[kind])
    for (const alg of await names(base)) {
      for (const hex of await names(join(base, alg))) {
        if (hex.endsWith('.tmp')) continue
        const text = await this.files.readText(join(base, alg, hex))
        if (text !== undefined) out.push({ digest: `${alg}:${hex}`, at: Number(text) || 0 })
      }
    }
    return out
  }

  repositoryChanges (): number { return this.foldersMade }

  async repositories (): Promise<string[]> {
    const out: string[] = []
    const reading = new Semaphore(WALK_READS)
    const walk = async (folder: string, name: string): Promise<void> => {
      const entries = await reading.run(() => names(folder))
      if (entries.includes('_blobs') || entries.includes('_manifests')) out.push(name)
      await Promise.all(entries.filter(e => !e.startsWith('_')).map(e => walk(join(folder, e), name === '' ? e : `${name}/${e}`)))
    }
    await walk(this.root, '')
    return out.sort()
  }

  private referrerPath (repo: string, subject: string, digest?: string): string {
    const folder = join(this.root, repo, '_referrers', subject.replace(':', '-'))
    return digest === undefined ? folder : join(folder, digest.replace(':', '-'))
  }

  async addReferrer (repo: string, subject: string, digest: string): Promise<void> {
    await this.files.write(this.referrerPath(repo, subject, digest), String(Date.now()))
  }

  async removeReferrer (repo: string, subject: string, digest: string): Promise<void> {
    await this.files.remove(this.referrerPath(repo, subject, digest))
  }

  async referrers (repo: string, subject: string): Promise<string[]> {
    return (await names(this.referrerPath(repo, subject))).filter(n => !n.endsWith('.tmp')).map(n => n.replace('-', ':')).sort()
  }
}
